"""The upstream "Create Runtime" page's examples (``examples/``), run against the fake.

Each example is the page's code with the import changed to ``exo_ref``. Here every
runtime is built by the example's own factory from ``EXOSPHERE_*`` environment variables, runs
until it has executed a triggered graph, and is stopped. The in-process fake is reached through
``transport=`` (the one keyword the test adds); the background-thread pattern uses the fake served
on loopback, so that example runs exactly as a user would run it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

from exo_ref import ManualClock, SystemClock, WaitTimeoutError
from fake_state_manager import FakeStateManager

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY = "examples-key"
URI_VAR = "EXOSPHERE_STATE_MANAGER_URI"
KEY_VAR = "EXOSPHERE_API_KEY"

BASIC_OUTPUTS = [{"result": "Processed: hello from trigger.py"}]
PIPELINE_OUTPUTS = [{"processed": "SOME RAW TEXT"}, {"valid": "true"}]


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Put examples/ on sys.path (they import each other, as when run as scripts)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if getattr(sys.modules[name], "__file__", "") and Path(
            str(sys.modules[name].__file__)
        ).parent == EXAMPLES:
            del sys.modules[name]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


async def run_once(
    fake: FakeStateManager, clock: ManualClock, runtime: Any, graph: str
) -> dict[str, Any]:
    """Run ``runtime`` until one run of ``graph`` (from examples/trigger.py) has finished."""
    trigger = load("trigger")
    async with anyio.create_task_group() as tg:
        await tg.start(runtime.run)
        summary: dict[str, Any] = await trigger.run_graph_once(
            graph, transport=fake.transport, clock=clock
        )
        runtime.stop()
    assert not runtime.is_running
    return summary


@pytest.mark.usefixtures("examples")
@pytest.mark.parametrize(
    ("module", "factory", "graph", "settings", "outputs"),
    [
        pytest.param("basic", "create_runtime", "basic", {}, BASIC_OUTPUTS, id="basic"),
        pytest.param(
            "advanced", "create_runtime", "basic",
            {"batch_size": 32, "workers": 8, "poll_interval": 2.0}, BASIC_OUTPUTS, id="advanced",
        ),
        pytest.param(
            "multiple_nodes", "create_runtime", "multiple", {"name": "DataPipeline"},
            PIPELINE_OUTPUTS, id="multiple-nodes",
        ),
        pytest.param(
            "configurations", "cpu_runtime", "basic", {"batch_size": 8, "workers": 2},
            BASIC_OUTPUTS, id="cpu",
        ),
        pytest.param(
            "configurations", "gpu_runtime", "basic", {"batch_size": 32, "workers": 16},
            BASIC_OUTPUTS, id="gpu",
        ),
        pytest.param(
            "configurations", "realtime_runtime", "basic", {"poll_interval": 1.0},
            BASIC_OUTPUTS, id="real-time",
        ),
        pytest.param(
            "configurations", "batch_runtime", "basic", {"poll_interval": 10.0},
            BASIC_OUTPUTS, id="batch",
        ),
    ],
)
async def test_example_runtime_executes_a_triggered_graph(
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    factory: str,
    graph: str,
    settings: dict[str, Any],
    outputs: list[dict[str, str]],
) -> None:
    clock = ManualClock(auto_advance=True)  # the batch example's 10 s polls take no real time
    async with FakeStateManager(api_key=KEY, clock=clock) as fake:
        monkeypatch.setenv(URI_VAR, fake.uri)
        monkeypatch.setenv(KEY_VAR, KEY)
        runtime = getattr(load(module), factory)(transport=fake.transport, clock=clock)
        for name, value in settings.items():
            assert getattr(runtime.settings, name) == value
        summary = await run_once(fake, clock, runtime, graph)
        assert summary["status"] == "SUCCESS"
        assert [state["outputs"] for state in fake.states(summary["run_id"])] == outputs


@pytest.mark.usefixtures("examples")
async def test_dotenv_example_reads_settings_from_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(URI_VAR, raising=False)  # also removes what the file sets, at teardown
    monkeypatch.delenv(KEY_VAR, raising=False)
    clock = ManualClock(auto_advance=True)
    async with FakeStateManager(api_key=KEY, clock=clock) as fake:
        env_file = tmp_path / ".env"
        env_file.write_text(f'# dev server\nexport {URI_VAR}="{fake.uri}"\n\n{KEY_VAR}={KEY}\n')
        runtime = load("dotenv_loading").create_runtime(
            env_file=env_file, transport=fake.transport, clock=clock
        )
        assert os.environ[URI_VAR] == fake.uri
        assert runtime.settings.state_manager_uri == fake.uri
        summary = await run_once(fake, clock, runtime, "basic")
        assert summary["status"] == "SUCCESS"


@pytest.mark.usefixtures("examples")
def test_env_file_parser_keeps_existing_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_VAR, "from-the-shell")
    monkeypatch.delenv(URI_VAR, raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text(f"{KEY_VAR}='from-the-file'\n{URI_VAR}='http://h:1'\nnot a setting\n")
    module = load("dotenv_loading")
    assert module.load_env_file(env_file) is True
    assert os.environ[KEY_VAR] == "from-the-shell"
    assert os.environ[URI_VAR] == "http://h:1"
    assert module.load_env_file(tmp_path / "missing.env") is False


@pytest.mark.usefixtures("examples")
def test_background_thread_pattern_starts_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    # start() in a daemon thread has its own event loop, so the fake is served on loopback.
    fake = FakeStateManager(api_key=KEY, clock=SystemClock())
    with fake.serve_in_thread() as uri:
        monkeypatch.setenv(URI_VAR, uri)
        monkeypatch.setenv(KEY_VAR, KEY)
        summary = load("background_thread").main(poll_interval=0.05)
    assert summary["status"] == "SUCCESS"
    assert [state["outputs"] for state in fake.states(summary["run_id"])] == BASIC_OUTPUTS


@pytest.mark.usefixtures("examples")
async def test_trigger_without_a_runtime_says_what_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 10: this was a bare TimeoutError after 30 s.
    trigger = load("trigger")
    clock = ManualClock(auto_advance=True)
    async with FakeStateManager(api_key=KEY, clock=clock) as fake:
        monkeypatch.setenv(URI_VAR, fake.uri)
        monkeypatch.setenv(KEY_VAR, KEY)
        with pytest.raises(WaitTimeoutError) as raised:
            await trigger.run_graph_once("basic", transport=fake.transport, clock=clock)
    assert str(raised.value) == (
        "no runtime registered MyNode in namespace 'MyProject' within 30 s: start the example"
        " runtime first (see examples/README.md) with the same EXOSPHERE_STATE_MANAGER_URI and"
        " EXOSPHERE_API_KEY as this script"
    )

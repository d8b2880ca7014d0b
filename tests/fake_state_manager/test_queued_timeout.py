"""``--queued-timeout`` / ``FakeStateManager(queued_timeout=...)`` with real runtimes (issue #10).

A runtime killed mid-execution leaves its state QUEUED; with a timeout the fake errors it through
the §5 path, the graph's retry policy creates a retry, and another runtime finishes the run. The
first runtime's late report gets the contract's 400. On a ManualClock the lease's end is a
wake-up time of the fake, so auto-advance jumps straight to it.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any, ClassVar

import anyio
import httpx
import pytest
from pydantic import BaseModel

from exo_ref import BaseNode, Runtime
from fake_state_manager import Engine, FakeStateManager, ManualClock
from fake_state_manager._cli import main
from tests.builders import graph_node

from .http_support import KEY, PREFIX, START, claim, registration, setup_graph, trigger

NAMESPACE = "ns"  # PREFIX's
TIMEOUT = 30.0
MESSAGE = (
    "State was QUEUED for more than 30 s without a report (queued-timeout); treated as errored"
)
ROOT = Path(__file__).resolve().parents[2]


class Step(BaseNode):
    """Echoes ``x``; blocks (until :attr:`release` is set) while :attr:`release` is an Event."""

    class Inputs(BaseModel):
        x: str

    class Outputs(BaseModel):
        y: str

    release: ClassVar[anyio.Event | None] = None
    started: ClassVar[anyio.Event | None] = None
    runs: ClassVar[list[str]] = []

    async def execute(self) -> BaseModel:
        if Step.started is not None:
            Step.started.set()
        if Step.release is not None:
            await Step.release.wait()
        Step.runs.append(self.inputs.x)
        return self.Outputs(y=self.inputs.x)


@pytest.fixture(autouse=True)
def _reset_step() -> None:
    Step.release, Step.started, Step.runs = None, None, []


def _runtime(sm: FakeStateManager, name: str, **settings: Any) -> Runtime:
    settings.setdefault("poll_interval", 5.0)
    return Runtime(
        NAMESPACE, name, [Step], sm.uri, sm.api_key, transport=sm.transport, clock=sm.clock,
        **settings,
    )


async def _graph(client: httpx.AsyncClient, backoff_ms: int = 500) -> None:
    await setup_graph(
        client,
        [registration("Step", ("x",), ("y",))],
        [graph_node("s", "Step", inputs={"x": "hello"})],
        retry_policy={"max_retries": 2, "strategy": "FIXED", "backoff_factor": backoff_ms},
    )


def _fake(**kwargs: Any) -> FakeStateManager:
    clock = ManualClock(START, auto_advance=True)
    return FakeStateManager(api_key=KEY, clock=clock, seed=0, queued_timeout=TIMEOUT, **kwargs)


async def test_a_state_claimed_and_never_reported_is_retried_and_another_runtime_finishes() -> None:
    async with _fake() as sm, sm.client() as client:
        await _graph(client)
        run_id = await trigger(client)
        (dead,) = await claim(client, "Step")  # a runtime claims it, then dies
        runtime = _runtime(sm, "second")
        async with anyio.create_task_group() as tg:
            await tg.start(runtime.run)
            summary = await sm.wait_for_run(run_id, timeout=20)
            runtime.stop()
        assert summary["status"] == "SUCCESS"
        first, retry = sm.states(run_id)
        assert (first["id"], first["status"], first["error"]) == (
            dead["state_id"],
            "RETRY_CREATED",
            MESSAGE,
        )
        assert (retry["status"], retry["retry_count"]) == ("SUCCESS", 1)
        assert Step.runs == ["hello"]
        # The dead runtime's report, arriving late: the contract's 400 (§2.8).
        late = await client.post(
            f"{PREFIX}/state/{dead['state_id']}/executed", json={"outputs": [{"y": "late"}]}
        )
        assert (late.status_code, late.json()) == (400, {"detail": "State is not queued"})
        sm.engine.check_invariants()


async def test_a_runtime_killed_mid_execution_is_replaced_by_a_second_runtime() -> None:
    async with _fake() as sm, sm.client() as client:
        await _graph(client)
        Step.started, Step.release = anyio.Event(), anyio.Event()  # the node never returns
        first = _runtime(sm, "first", batch_size=1, workers=1)
        clock = sm.clock
        assert isinstance(clock, ManualClock)
        with ExitStack() as held_clock:
            async with anyio.create_task_group() as killed:
                await killed.start(first.run)
                run_id = await trigger(client)
                await Step.started.wait()
                # Like SIGKILL: no report, no hand-back. The clock is held until the runtime's
                # task has wound down (it waits for a thread, which looks idle to auto-advance).
                held_clock.enter_context(clock.hold())
                killed.cancel_scope.cancel()
        (held,) = sm.states(run_id)
        assert held["status"] == "QUEUED"
        Step.started = Step.release = None
        second = _runtime(sm, "second")
        async with anyio.create_task_group() as tg:
            await tg.start(second.run)
            summary = await sm.wait_for_run(run_id, timeout=20)
            second.stop()
        assert summary["status"] == "SUCCESS"
        states = sm.states(run_id)
        assert [s["status"] for s in states] == ["RETRY_CREATED", "SUCCESS"]
        assert states[0]["error"] == MESSAGE
        assert sm.clock.now() >= START + TIMEOUT
        assert Step.runs == ["hello"]  # executed to the end once: by the second runtime


async def test_the_first_runtimes_late_report_is_refused_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with _fake() as sm, sm.client() as client:
        # The retry waits 60 s: the late report comes while nobody holds the state.
        await _graph(client, backoff_ms=60_000)
        Step.started, Step.release = anyio.Event(), anyio.Event()
        runtime = _runtime(sm, "slow", batch_size=1, workers=1)
        async with anyio.create_task_group() as tg:
            await tg.start(runtime.run)
            run_id = await trigger(client)
            await Step.started.wait()
            await sm.clock.sleep(TIMEOUT + 1)  # the node is still running: the lease ends
            assert [s["status"] for s in sm.states(run_id)] == ["RETRY_CREATED", "CREATED"]
            Step.started = None
            Step.release.set()  # the node returns; its report is now late
            summary = await sm.wait_for_run(run_id, timeout=20)  # the retry, same runtime
            runtime.stop()
        assert summary["status"] == "SUCCESS"
        assert [s["status"] for s in sm.states(run_id)] == ["RETRY_CREATED", "SUCCESS"]
        assert Step.runs == ["hello", "hello"]
        refused = [r for r in sm.requests if r.status == 400]
        assert [r.path.rsplit("/", 1)[1] for r in refused] == ["executed"]
    # exo_ref logs a 400 on a first attempt as a report that was not applied (the server had
    # already handled the state); it does not retry it.
    assert "State is not queued" in caplog.text
    assert "was QUEUED for more than 30 s without a report" in caplog.text  # the fake's line


async def test_without_the_option_a_killed_runtimes_state_stays_queued() -> None:
    clock = ManualClock(START, auto_advance=True)
    async with FakeStateManager(api_key=KEY, clock=clock) as sm, sm.client() as client:
        await _graph(client)
        run_id = await trigger(client)
        await claim(client, "Step")
        await clock.sleep(7 * 86400.0)
        assert [s["status"] for s in sm.states(run_id)] == ["QUEUED"]
        assert sm.engine.next_due_time() is None


def test_options_go_to_the_engine_and_not_beside_one() -> None:
    sm = FakeStateManager(queued_timeout=1.5, retain_runs=10, retain_hours=2.0)
    assert (sm.engine.queued_timeout, sm.engine.retain_runs, sm.engine.retain_hours) == (
        1.5,
        10,
        2.0,
    )
    with pytest.raises(ValueError, match="either engine= or queued_timeout="):
        FakeStateManager(engine=Engine(), queued_timeout=1.0)
    with pytest.raises(ValueError, match="queued_timeout must be at least"):
        FakeStateManager(queued_timeout=0)
    sm.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--queued-timeout", "0"], "--queued-timeout must be at least 0.001 s"),
        (["--queued-timeout", "nan"], "--queued-timeout must be at least 0.001 s"),
        (["--retain-runs", "-1"], "--retain-runs must be at least 0"),
        (["--retain-hours", "0"], "--retain-hours must be > 0"),
        (["--retain-hours", "inf"], "--retain-hours must be > 0"),
    ],
)
def test_bad_option_values_are_usage_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_dev_server_reclaims_a_stuck_state_on_the_real_clock(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "STATE_MANAGER_SECRET": KEY, "PYTHONPATH": str(ROOT)}
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "fake_state_manager", "--port", str(port),
             "--queued-timeout", "0.5", "--retain-runs", "100"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("fake state manager listening on")
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"x-api-key": KEY}, timeout=30) as client:
            nodes = {"runtime_name": "rt", "nodes": [registration("Step", ("x",), ("y",))]}
            assert client.put(f"{PREFIX}/nodes/", json=nodes).status_code == 200
            body = {
                "secrets": {},
                "nodes": [graph_node("s", "Step", inputs={"x": "hello"})],
                "retry_policy": {"max_retries": 0},
            }
            assert client.put(f"{PREFIX}/graph/g", json=body).status_code == 201
            run_id = client.post(f"{PREFIX}/graph/g/trigger", json={}).json()["run_id"]
            claimed = client.post(
                f"{PREFIX}/states/enqueue", json={"nodes": ["Step"], "batch_size": 1}
            ).json()
            (state,) = claimed["states"]
            deadline = time.monotonic() + 60  # a safety net: the lease ends after 0.5 s
            while True:
                graph = client.get(f"{PREFIX}/states/run/{run_id}/graph").json()
                if graph["nodes"][0]["status"] != "QUEUED" or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert graph["nodes"][0]["status"] == "ERRORED"
            assert "more than 0.5 s without a report" in graph["nodes"][0]["error"]
            late = client.post(
                f"{PREFIX}/state/{state['state_id']}/executed", json={"outputs": [{}]}
            )
            assert (late.status_code, late.json()) == (400, {"detail": "State is not queued"})
        process.terminate()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close() if process.stdout else None
    log = stderr_path.read_text()
    assert "treated as errored (--queued-timeout)" in log
    assert "keeping at most 100 finished run(s)" in log
    assert "Traceback" not in log

"""``exo-ref demo`` (exo_ref/_cli.py, exo_ref/_demo.py): the README's main job."""

from __future__ import annotations

import io
import logging
import re

import pytest

from exo_ref._cli import main
from exo_ref._demo_nodes import expected_states


def run(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    status = main(list(args), out=out)
    return status, out.getvalue()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_demo_fans_out_and_in_and_exits_0(backend: str) -> None:
    status, text = run("demo", "--fan-out", "7", "--workers", "3", "--batch-size", "4",
                       "--backend", backend)
    assert status == 0, text
    total = expected_states(7)
    assert total == 16  # prepare + 7 split states + 7 workers + 1 merge
    assert re.search(
        rf"run [0-9a-f-]+: SUCCESS  states={total} success={total} pending=0 errored=0 "
        r"retried=0\n", text,
    ), text
    # The merge ran exactly once, after all seven items (a real fan-in, contract §3.5).
    assert "merge output: {'summary': 'all 7 items processed'}" in text
    assert f"progress: {total}/{total} states done (SUCCESS {total})" in text
    assert "upserted graph: VALID" in text
    assert text.rstrip().endswith("runtime stopped")
    assert f"backend={backend}" in text


def test_demo_defaults_fan_out_to_20() -> None:
    status, text = run("demo")
    assert status == 0, text
    assert "fan-out 20" in text
    assert "SUCCESS  states=42 success=42" in text


def test_demo_exits_1_when_the_run_fails() -> None:
    status, text = run("demo", "--fan-out", "4", "--fail-item", "2")
    assert status == 1, text
    # Item 2 is tried three times (two retries, contract §5); the merge never runs.
    assert re.search(r": FAILED  states=11 success=8 pending=0 errored=1 retried=2\n", text), text
    assert "ERRORED state" in text
    assert "fails on purpose" in text
    assert "merge output" not in text
    assert text.rstrip().endswith("runtime stopped")


def test_demo_restores_the_exo_ref_log_level() -> None:
    logger = logging.getLogger("exo_ref")
    before = logger.level
    assert run("demo", "--fan-out", "1")[0] == 0
    assert logger.level == before


def test_no_command_prints_help_and_exits_2() -> None:
    status, text = run()
    assert status == 2
    assert "demo" in text


@pytest.mark.parametrize("bad", ["0", "-3", "many"])
def test_demo_refuses_a_bad_fan_out(bad: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--fan-out", bad])
    assert info.value.code == 2
    assert "--fan-out" in capsys.readouterr().err


def test_every_backend_the_demo_offers_comes_with_a_plain_install() -> None:
    # Issue 10: `exo-ref demo --backend trio` (in the README) failed after `pip install exo-ref`.
    import importlib.metadata

    from packaging.requirements import Requirement

    plain = {
        Requirement(text).name
        for text in importlib.metadata.requires("exo-ref") or []
        if Requirement(text).marker is None
    }
    assert {"anyio", "trio"} <= plain

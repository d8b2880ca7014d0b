"""The black-box mode: exo_ref as a subprocess passes every rule; each rule catches a mutant.

The runtime under test is a real process (``python -m conformance.service``) talking HTTP to the
fake served on loopback with the system clock; nothing is injected into it. These tests cost
real seconds (the battery is sized to take well under a minute), so they are few:

- the CLI runs the whole battery against ``--sdk exo_ref`` and must exit 0 with every rule
  passed, and ``--runtime-cmd`` runs a shell command line the same way;
- every rule the mode judges has a mutant (tests/conformance/mutants.py, served by the same
  runner with ``--runtime-class``) that breaks it, run on the battery scenario that judges it;
- the cheap parts (the catalogue nodes against their spec, the tap, the report plumbing) are
  checked without a subprocess.

Timeouts on subprocesses are hang guards only.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

import exo_ref
from conformance import (
    CATALOGUE,
    RULES,
    SCENARIOS,
    Verdict,
    judge,
    run_blackbox,
    sdk_command,
)
from conformance._battery import fold, scenario_named
from conformance._catalogue import SECRET_VALUE, expected_reports
from conformance._cli import main
from conformance._report import BEGIN, END, replace_section
from conformance._tap import ServerTap
from conformance.service import build_nodes
from exo_ref.testing import run_node

ROOT = Path(__file__).resolve().parents[2]
#: Hang guard for one CLI run of the whole battery (it takes well under a minute).
HANG_GUARD = 600

#: rule -> (mutant class in tests/conformance/mutants.py, battery scenario that catches it).
BLACK_BOX: dict[str, tuple[str, str]] = {
    "R1": ("RegistersWithoutSecrets", "idle"),
    "R2": ("PollsForUnregistered", "idle"),
    "R3": ("ToleratesInvalidNodes", "invalid"),
    "B1": ("AskDouble", "idle"),
    "B2": ("HoldDouble", "batching"),
    "B3": ("SwallowReport", "outcomes"),
    "W1": ("ExceedWorkers", "concurrency"),
    "W2": ("OneWorker", "concurrency"),
    "W3": ("SyncOnLoop", "sync"),
    "T1": ("EagerIdlePolls", "idle"),
    "T2": ("SleepAfterFullBatch", "burst"),
    "T3": ("ConstantErrorBackoff", "faults"),
    "T4": ("PollsAfterStop", "idle"),
    "E1": ("PruneAsError", "outcomes"),
    "E2": ("NoReportRetry", "faults"),
    "E3": ("ErroredAfterFailedReport", "faults"),
    "L1": ("CrashesWhilePolling", "idle"),
    "L2": ("IgnoresStop", "idle"),
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conformance", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
        check=False,
    )


# -- the battery against exo_ref ---------------------------------------------------------------


def test_exo_ref_passes_every_rule_from_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = _cli("run", "--sdk", "exo_ref", "--json", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert {r["rule"]: r["status"] for r in report["rules"]} == {r.id: "pass" for r in RULES}
    assert [s["name"] for s in report["scenarios"]] == [s.name for s in SCENARIOS]
    for rule in RULES:  # the table names every rule
        assert rule.id in result.stdout


def test_runtime_cmd_runs_a_shell_command_as_the_runtime(tmp_path: Path) -> None:
    command = f"{shlex.quote(sys.executable)} -m conformance.service --sdk exo_ref"
    out = tmp_path / "report.json"
    result = _cli(
        "run", "--runtime-cmd", command, "--scenario", "idle", "--scenario", "invalid",
        "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["runtime"] == command
    judged = {r["rule"] for r in report["rules"] if r["status"] == "pass"}
    assert {"R1", "R2", "R3", "T1", "T4", "L1", "L2"} <= judged
    assert all(r["status"] in ("pass", "not run") for r in report["rules"])


def test_an_sdk_that_cannot_be_imported_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["run", "--sdk", "exospherehost", "--python", str(ROOT / "no-such-python")])
    assert status == 2
    assert "cannot be imported" in capsys.readouterr().err


# -- mutants -----------------------------------------------------------------------------------


def test_every_rule_has_a_black_box_mutant() -> None:
    assert set(BLACK_BOX) == {rule.id for rule in RULES}
    for rule, (_, scenario) in BLACK_BOX.items():
        assert scenario_named(scenario), rule


@pytest.mark.parametrize(("rule", "mutant", "scenario"), [(r, *m) for r, m in BLACK_BOX.items()])
def test_the_black_box_mode_catches_each_mutant(rule: str, mutant: str, scenario: str) -> None:
    chosen = scenario_named(scenario)
    if rule == "L2":  # the mutant never exits: do not wait the full ten seconds for it
        chosen = replace(chosen, exit_timeout=2.0)
    command = sdk_command("exo_ref", runtime_class=f"tests.conformance.mutants:{mutant}")
    obs = run_blackbox(command, chosen, cwd=str(ROOT))
    failed = {v.rule: v.reason for v in judge(obs) if not v.passed}
    assert rule in failed, (
        f"{mutant} was not caught by {rule}; failed: {failed}\n{obs.stderr[-3000:]}"
    )


#: Mutants that slip past a weaker reading of a rule: (rule, mutant, scenario).
SUBTLER: list[tuple[str, str, str]] = [
    ("B3", "ReportsTwice", "outcomes"),  # the second copy is refused: no applied duplicate
    ("B3", "ReportsUnclaimed", "outcomes"),  # refused too: only the sent report shows it
    ("R1", "ReRegistersWithoutSecrets", "idle"),  # the first registration is right
    ("T3", "QuickThenConstantBackoff", "faults"),  # 0.01 s, then flat: the first gap is short
]


@pytest.mark.parametrize(("rule", "mutant", "scenario"), SUBTLER)
def test_the_black_box_mode_catches_subtler_mutants(rule: str, mutant: str, scenario: str) -> None:
    command = sdk_command("exo_ref", runtime_class=f"tests.conformance.mutants:{mutant}")
    obs = run_blackbox(command, scenario_named(scenario), cwd=str(ROOT))
    failed = {v.rule: v.reason for v in judge(obs) if not v.passed}
    assert rule in failed, (
        f"{mutant} was not caught by {rule}; failed: {failed}\n{obs.stderr[-3000:]}"
    )


def test_a_runtime_that_exits_at_once_fails_b3_and_t1_saying_what_happened() -> None:
    command = [sys.executable, "-c", "pass"]
    idle = {v.rule: v for v in judge(run_blackbox(command, scenario_named("idle"), cwd=str(ROOT)))}
    assert idle["T1"].reason.endswith("no idle poll before the stop, expected 4")
    outcomes = run_blackbox(command, scenario_named("outcomes"), cwd=str(ROOT))
    b3 = next(v for v in judge(outcomes) if v.rule == "B3")
    assert not b3.passed
    assert "none of the 8 triggered cases was claimed (the runtime exited first)" in b3.reason


# -- the catalogue's implementation against its spec (no subprocess) --------------------------


async def _report_of(nodes: dict[str, type[Any]], case: Any) -> tuple[str, Any]:
    """Run one execution of ``case``'s node as the runtime would; the report it would send."""
    node = nodes[case.node]
    secrets = {"token": SECRET_VALUE} if case.node == "UseSecret" else None
    try:
        outputs = await run_node(node, case.trigger_inputs(), secrets)
    except exo_ref.PruneSignal as signal:
        return "prune", {"data": signal.data}
    except exo_ref.ReQueueAfterSignal as signal:
        return "re-enqueue-after", {"enqueue_after": signal.delay_ms}
    except RuntimeError as error:
        return "errored", {"error": str(error)}
    return "executed", {"outputs": outputs}


# The service runs the nodes on asyncio (both SDKs' start()), and Sleep awaits asyncio.sleep.
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_catalogue_nodes_do_what_the_spec_says() -> None:
    nodes = {node.__name__: node for node in build_nodes(exo_ref)}  # fresh attempt counters
    cases = [c for s in SCENARIOS for c in s.cases if c.node not in ("Sleep", "SyncBlock")]
    cases.append(replace(scenario_named("sync").cases[0], inputs={"seconds": "0"}))
    cases.append(replace(scenario_named("batching").cases[0], inputs={"seconds": "0"}))
    for case in cases:
        expected = expected_reports(case).reports
        got = [await _report_of(nodes, case) for _ in expected]
        assert got == list(expected), case


def test_the_catalogue_source_matches_the_spec() -> None:
    assert [n.__name__ for n in build_nodes(exo_ref)] == [s.name for s in CATALOGUE]
    invalid = build_nodes(exo_ref, invalid=True)[-1]
    with pytest.raises(ValueError, match=r"BrokenNode.*count"):
        exo_ref.Runtime("ns", "r", [invalid], state_manager_uri="http://sm", key="k")


# -- the tap and the report plumbing -----------------------------------------------------------


async def test_the_tap_records_answers_and_injects_scripted_faults() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:  # read the body whole, as the fake does
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b'{"echo": ' + body + b"}"})

    clock = iter(range(100))
    tap = ServerTap(app, lambda: float(next(clock)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=tap), base_url="http://t") as c:
        before = await c.post("/v0/namespace/n/states/enqueue", json={"a": 1})
        tap.arm({"enqueue": ("status_502_html", None)})
        first = await c.post("/v0/namespace/n/states/enqueue", json={"a": 2})
        second = await c.post("/v0/namespace/n/states/enqueue", json={"a": 3})
    assert before.json() == {"echo": {"a": 1}}
    assert (first.status_code, first.headers["content-type"]) == (502, "text/html")
    assert second.json() == {"echo": {"a": 3}}
    faulted, passed = tap.snapshot()
    assert (faulted.fault, faulted.forwarded, faulted.request) == (
        "status_502_html",
        False,
        {"a": 2},
    )
    assert (passed.fault, passed.ok, passed.response) == (None, True, {"echo": {"a": 3}})
    assert passed.sent_at < passed.done_at  # type: ignore[operator]
    # The injected mode's exchange on its server layer, ordered by one sequence: the fault was
    # answered before the next request arrived.
    assert (faulted.layer, passed.layer) == ("server", "server")
    assert faulted.sent_seq < faulted.done_seq < passed.sent_seq < passed.done_seq  # type: ignore[operator]


def test_a_rule_fails_when_any_scenario_fails_it() -> None:
    verdicts = [
        Verdict("T1", "idle", True, "fine"),
        Verdict("T1", "outcomes", False, "too early"),
        Verdict("R1", "idle", True, "registered"),
    ]
    results = {r.rule: r for r in fold("x", verdicts)}
    assert (results["T1"].passed, results["T1"].reason) == (False, "[outcomes] too early")
    assert (results["R1"].passed, results["W2"].passed) == (True, None)


def test_the_docs_describe_every_node_rule_and_scenario_and_hold_a_report() -> None:
    docs = (ROOT / "docs" / "conformance.md").read_text()
    for spec in CATALOGUE:
        assert f"`{spec.name}`" in docs, spec.name
        for field in (*spec.inputs, *spec.outputs, *spec.secrets):
            assert f"`{field}`" in docs, (spec.name, field)
    for rule in RULES:
        assert f"| {rule.id} |" in docs, rule.id
    for scenario in SCENARIOS:
        assert f"`{scenario.name}`" in docs, scenario.name
    assert docs.count(BEGIN) == docs.count(END) == 1
    assert "`exospherehost` 0.0.3" in docs
    assert replace_section(docs, ["new"]).count("new") >= 1


def test_settle_outlasts_every_wait_a_scenario_makes() -> None:
    for scenario in SCENARIOS:
        longest = max((max(c.seconds, c.delay) for c in scenario.cases), default=0.0)
        assert scenario.settle > longest + 2 * scenario.poll_interval, scenario.name

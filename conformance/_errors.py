"""Error-reporting rules: what each execution must end in (contract §2.8-2.11, §6, §8.6).

- **E1** each behaviour ends in the right applied report with the right body: one output /
  many / none → ``executed`` with exactly those outputs (``[]`` for none); an exception →
  ``errored`` with its message; the prune signal → ``prune`` with its data; the re-enqueue
  signal → ``re-enqueue-after`` with the delay in whole milliseconds (truncation by 1 ms
  tolerated), then ``executed`` on the next run.
- **E2** server faults (5xx, resets, timeouts, lost responses) lose nothing: every case still
  ends as E1 says, with no state left without its terminal report.
- **E3** faults never turn one outcome into another: every report the runtime sends for a claim
  (including retries) has the same kind and body.
"""

from __future__ import annotations

from typing import Any

from conformance._harness import Observation
from conformance._nodes import expected_outcome
from conformance._outcomes import (
    collapse_requeues,
    reports_by_state,
    same_report_body,
    state_case,
)
from conformance._recording import REPORT_KINDS, TERMINAL_KINDS, Exchange
from conformance._rules import fail, require_healthy_run

__all__ = ["assert_outcomes"]


def _describe(exchanges: list[Exchange]) -> str:
    return (
        "; ".join(
            f"{x.kind} {x.request!r} -> {x.status if x.status is not None else x.error}"
            for x in exchanges
        )
        or "nothing"
    )


def assert_outcomes(obs: Observation) -> None:
    """E1/E2 (final applied reports per case) and E3 (retries keep kind and body)."""
    require_healthy_run(obs)
    rule = "E2" if obs.fault_actions else "E1"
    cases_of = state_case(obs.log)
    applied = reports_by_state(obs.log.layer("server"), applied_only=True)
    sent = reports_by_state(obs.log.layer("runtime"), applied_only=False)
    per_case: dict[str, list[Exchange]] = {}
    for state_id, exchanges in applied.items():
        per_case.setdefault(cases_of.get(state_id, "?"), []).extend(exchanges)
    for case in obs.scenario.cases:
        shape = obs.scenario.shape(case.node)
        expected = expected_outcome(shape, case)
        got = sorted(per_case.get(case.case_id, []), key=lambda x: x.done_seq or 0)
        collapsed = collapse_requeues(got)
        kinds = tuple(x.kind for x in collapsed)
        attempts = [x for s, xs in sent.items() if cases_of.get(s) == case.case_id for x in xs]
        if kinds != expected.kinds or not all(
            same_report_body(x.kind, x.request, want)
            for x, want in zip(collapsed, expected.bodies, strict=False)
        ):
            fail(
                "error-reporting",
                rule,
                f"case {case.case_id} ({case.behaviour.kind}) should end in"
                f" {list(expected.reports)};"
                f" applied: {_describe(collapsed)}; sent: {_describe(attempts)}",
                obs,
            )
    _assert_retries_keep_outcome(obs, sent, cases_of)


def _assert_retries_keep_outcome(
    obs: Observation, sent: dict[str, list[Exchange]], cases_of: dict[str, str]
) -> None:
    # Split each state's reports into claims: a claim ends with its terminal or requeue report.
    for state_id, exchanges in sent.items():
        distinct: list[tuple[str, Any]] = []
        for exchange in exchanges:
            if exchange.kind not in REPORT_KINDS:
                continue
            key = (exchange.kind, exchange.request)
            if not distinct or distinct[-1] != key:
                distinct.append(key)
        terminal = [k for k in distinct if k[0] in TERMINAL_KINDS]
        if len(terminal) > 1:
            fail(
                "error-reporting",
                "E3",
                f"state {state_id} (case {cases_of.get(state_id)}) was reported as"
                f" {[k for k, _ in terminal]} with bodies {[b for _, b in terminal]};"
                " one outcome must not turn into another",
                obs,
            )

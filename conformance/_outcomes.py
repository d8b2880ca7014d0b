"""Derived views of recorded exchanges: which state is which case, what was reported, and how.

The case id travels in the inputs of every triggered state, so the enqueue responses tell which
``state_id`` is which case (contract §2.7 returns the stored inputs). The views over plain
exchanges serve both modes: the injected one reads its server layer, the black-box one the tap.
Both judge batching (B1, B2) and concurrency (W1, W2) with the same measures, over their own
records: :func:`batch_size_error`, :func:`unstarted_after_polls`, :func:`peak_overlap`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from conformance._recording import REPORT_KINDS, TERMINAL_KINDS, EventLog, Exchange

if TYPE_CHECKING:
    from conformance._harness import Observation

__all__ = [
    "all_cases_final",
    "batch_size_error",
    "claim_counts",
    "collapse_requeues",
    "peak_overlap",
    "reports_by_state",
    "same_report_body",
    "state_case",
    "unstarted_after_polls",
]


def state_case(log: EventLog) -> dict[str, str]:
    """``state_id -> case id`` for every state any enqueue handed out."""
    mapping: dict[str, str] = {}
    for exchange in log.exchanges:
        for state in exchange.claimed():
            inputs = state.get("inputs") or {}
            mapping[str(state.get("state_id"))] = str(next(iter(inputs.values()), ""))
    return mapping


def claim_counts(exchanges: Iterable[Exchange]) -> dict[str, int]:
    """``state_id -> how many times`` an enqueue among ``exchanges`` handed it out."""
    claims: dict[str, int] = {}
    for exchange in exchanges:
        for state in exchange.claimed():
            state_id = str(state.get("state_id"))
            claims[state_id] = claims.get(state_id, 0) + 1
    return claims


def reports_by_state(
    exchanges: Iterable[Exchange], *, applied_only: bool
) -> dict[str, list[Exchange]]:
    """Report exchanges per state id, in recorded order (only applied ones if ``applied_only``)."""
    reports: dict[str, list[Exchange]] = {}
    for exchange in exchanges:
        if exchange.kind not in REPORT_KINDS or exchange.state_id is None:
            continue
        if applied_only and not exchange.ok:
            continue
        reports.setdefault(exchange.state_id, []).append(exchange)
    return reports


def collapse_requeues(applied: Iterable[Exchange]) -> list[Exchange]:
    """``applied`` without repeats of a re-enqueue-after: a retried one may be applied twice (it
    has no precondition, §2.11), which is not a second outcome."""
    collapsed: list[Exchange] = []
    for exchange in applied:
        if (
            collapsed
            and exchange.kind == "re-enqueue-after" == collapsed[-1].kind
            and exchange.request == collapsed[-1].request
        ):
            continue
        collapsed.append(exchange)
    return collapsed


def same_report_body(kind: str, got: Any, want: Any) -> bool:
    """A report's body is the expected one (a re-enqueue delay may be 1 ms short: truncation)."""
    if kind == "re-enqueue-after" and isinstance(got, dict):
        delay, wanted = got.get("enqueue_after"), want["enqueue_after"]
        return isinstance(delay, int) and wanted - 1 <= delay <= wanted
    return bool(got == want)


def batch_size_error(request: Any, limit: int) -> str | None:
    """B1: what is wrong with a poll body's ``batch_size`` for a runtime set to ``limit``, or
    None. A JSON ``true`` is no batch size, though Python's ``bool`` is an ``int``."""
    asked = request.get("batch_size") if isinstance(request, dict) else None
    if not isinstance(asked, int) or isinstance(asked, bool) or not 1 <= asked <= limit:
        return f"batch_size={asked!r}, outside 1..batch_size={limit}"
    return None


def unstarted_after_polls(
    polls: Iterable[tuple[int, float]], starts: Iterable[float]
) -> list[int]:
    """B2: after each poll, how many of the states claimed so far had not started executing.

    ``polls`` are ``(states claimed, moment answered)`` in order; ``starts`` the executions'
    start moments on the same scale. A state a poll claims cannot start before its answer, so
    starts at or after that moment count for later polls only.
    """
    ordered = sorted(starts)
    claimed = 0
    unstarted = []
    for count, answered in polls:
        claimed += count
        unstarted.append(claimed - bisect.bisect_left(ordered, answered))
    return unstarted


def peak_overlap(spans: Iterable[tuple[float, float | None]]) -> int:
    """The most ``(start, end)`` spans open at once; a span without an end stays open.

    At equal moments an end counts before a start: one execution ending as the next begins
    (a worker handing over) is not two at once.
    """
    events: list[tuple[float, int]] = []
    for start, end in spans:
        events.append((start, 1))
        if end is not None:
            events.append((end, -1))
    current = peak = 0
    for _, delta in sorted(events):
        current += delta
        peak = max(peak, current)
    return peak


def all_cases_final(obs: Observation) -> bool:
    """Every case has a state with an applied terminal report, and the runtime has polled at
    least twice (the default stop condition; a scenario with no cases still sees two polls)."""
    polls = [x for x in obs.log.layer("runtime", "enqueue") if x.done_seq is not None]
    if len(polls) < 2:
        return False
    cases = state_case(obs.log)
    final: set[str] = set()
    server = obs.log.layer("server")
    for state_id, exchanges in reports_by_state(server, applied_only=True).items():
        if any(x.kind in TERMINAL_KINDS for x in exchanges) and state_id in cases:
            final.add(cases[state_id])
    return all(c.case_id in final for c in obs.scenario.cases)

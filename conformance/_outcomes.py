"""Derived views of an event log: which state belongs to which case, what was claimed, reported.

The case id travels in every input field of a triggered state, so the enqueue responses tell
which ``state_id`` is which case (contract §2.7 returns the stored inputs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conformance._recording import EventLog, Exchange, Layer

if TYPE_CHECKING:
    from conformance._harness import Observation

__all__ = [
    "REPORT_KINDS",
    "TERMINAL_KINDS",
    "all_cases_final",
    "claimed_states",
    "reports_by_state",
    "state_case",
]

TERMINAL_KINDS = frozenset({"executed", "errored", "prune"})
REPORT_KINDS = frozenset({*TERMINAL_KINDS, "re-enqueue-after"})


def claimed_states(exchange: Exchange) -> list[dict[str, Any]]:
    """The states an enqueue exchange handed out (empty unless it succeeded)."""
    if exchange.kind != "enqueue" or not exchange.ok or not isinstance(exchange.response, dict):
        return []
    states = exchange.response.get("states")
    return [s for s in states if isinstance(s, dict)] if isinstance(states, list) else []


def state_case(log: EventLog) -> dict[str, str]:
    """``state_id -> case id`` for every state any enqueue handed out."""
    mapping: dict[str, str] = {}
    for exchange in log.exchanges:
        for state in claimed_states(exchange):
            inputs = state.get("inputs") or {}
            mapping[str(state.get("state_id"))] = str(next(iter(inputs.values()), ""))
    return mapping


def reports_by_state(
    log: EventLog, layer: Layer, *, applied_only: bool
) -> dict[str, list[Exchange]]:
    """Report exchanges per state id, in sending order (only 2xx ones if ``applied_only``)."""
    reports: dict[str, list[Exchange]] = {}
    for exchange in log.layer(layer):
        if exchange.kind not in REPORT_KINDS or exchange.state_id is None:
            continue
        if applied_only and not exchange.ok:
            continue
        reports.setdefault(exchange.state_id, []).append(exchange)
    return reports


def all_cases_final(obs: Observation) -> bool:
    """Every case has a state with an applied terminal report, and the runtime has polled at
    least twice (the default stop condition; a scenario with no cases still sees two polls)."""
    polls = [x for x in obs.log.layer("runtime", "enqueue") if x.done_seq is not None]
    if len(polls) < 2:
        return False
    cases = state_case(obs.log)
    final: set[str] = set()
    for state_id, exchanges in reports_by_state(obs.log, "server", applied_only=True).items():
        if any(x.kind in TERMINAL_KINDS for x in exchanges) and state_id in cases:
            final.add(cases[state_id])
    return all(c.case_id in final for c in obs.scenario.cases)

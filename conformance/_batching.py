"""Batching rules: how many states a runtime may claim and hold (contract §2.7, §3.3, §8.5).

- **B1** no enqueue asks for more than ``batch_size`` (nor for fewer than 1).
- **B2** claimed-but-unstarted states never exceed ``batch_size``. Measured at every claim (an
  enqueue answer reaching the runtime) as ``claimed so far - executions begun so far``; a state
  counts as started when its ``execute()`` begins, so up to ``workers`` states that a worker has
  already taken but not yet begun (fetching secrets, validating inputs) are allowed on top.
- **B3** every claimed state reaches exactly one terminal report (executed / errored / prune)
  applied by the server, and no state gets a terminal report it was not claimed for. A state
  re-enqueued with re-enqueue-after is claimed again and needs a terminal report once more.
"""

from __future__ import annotations

from conformance._harness import Observation
from conformance._outcomes import (
    batch_size_error,
    claim_counts,
    reports_by_state,
    state_case,
    unstarted_after_polls,
)
from conformance._recording import TERMINAL_KINDS
from conformance._rules import fail, require_healthy_run

__all__ = ["assert_batching"]


def assert_batching(obs: Observation) -> None:
    """Raise ``AssertionError`` naming B1, B2 or B3 if the observation breaks one."""
    require_healthy_run(obs)
    batch_size = obs.settings.batch_size
    enqueues = obs.log.layer("runtime", "enqueue")
    for exchange in enqueues:
        if problem := batch_size_error(exchange.request, batch_size):
            fail("batching", "B1", f"an enqueue asked for {problem}", obs)
    allowance = batch_size + obs.settings.workers
    unstarted = unstarted_after_polls(
        ((len(x.claimed()), x.done_seq or 0) for x in enqueues),
        (e.start_seq for e in obs.log.executions),
    )
    for count in unstarted:
        if count > allowance:
            fail(
                "batching",
                "B2",
                f"{count} claimed-but-unstarted states exceed batch_size={batch_size}"
                f" (+{obs.settings.workers} being handed to workers)",
                obs,
            )
    _assert_one_terminal_report(obs)


def _assert_one_terminal_report(obs: Observation) -> None:
    cases = state_case(obs.log)
    claims = claim_counts(obs.log.layer("server", "enqueue"))
    applied = reports_by_state(obs.log.layer("server"), applied_only=True)
    for state_id, exchanges in applied.items():
        if state_id not in claims:
            fail("batching", "B3", f"state {state_id} was reported without being claimed", obs)
        terminal = [x.kind for x in exchanges if x.kind in TERMINAL_KINDS]
        if len(terminal) > 1:
            fail(
                "batching",
                "B3",
                f"state {state_id} (case {cases.get(state_id)}) got {len(terminal)} applied"
                f" terminal reports {terminal}, expected exactly one",
                obs,
            )
    if not obs.reached:
        missing = [
            f"{s} (case {cases.get(s)})"
            for s in claims
            if not any(x.kind in TERMINAL_KINDS for x in applied.get(s, []))
        ]
        if missing:
            fail(
                "batching",
                "B3",
                f"claimed states never reached a terminal report: {', '.join(missing[:5])}"
                f"{' ...' if len(missing) > 5 else ''}",
                obs,
            )
        fail("batching", "B3", "not every triggered state was claimed and reported", obs)

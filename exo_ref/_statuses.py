"""The statuses a state, a run and a graph template can have, and how a run's follows from its
states'.

Every reader of a run needs the same two groupings: the states that keep it going (the
progress bar of the demo, :class:`~exo_ref.testing.ExoEnv`'s waits, ``exo-ref run``) and the
states that make a finished run FAILED. They live here once, next to the ``Literal`` types that
the wire descriptions (:mod:`exo_ref._wire`) give their ``status`` fields, so that a status the
contract does not know is a mypy error wherever it is compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

__all__ = [
    "ERRORED_STATES",
    "RUN_STATUSES",
    "UNFINISHED_STATES",
    "VALIDATING",
    "RunStatus",
    "StateStatus",
    "ValidationStatus",
    "run_status",
]

#: A state's status as the server reports it (contract §3.2), in the contract's order, which
#: is also the order of a run graph's ``execution_summary`` (§7.2).
StateStatus = Literal[
    "CREATED",
    "QUEUED",
    "EXECUTED",
    "ERRORED",
    "NEXT_CREATED_ERROR",
    "SUCCESS",
    "PRUNED",
    "RETRY_CREATED",
]

#: A run's status, derived from its states at each read (contract §3.6, §7.1).
RunStatus = Literal["PENDING", "SUCCESS", "FAILED"]

#: A graph template's ``validation_status`` (contract §4.4): every upsert sets PENDING, the
#: verification that follows VALID or INVALID. ONGOING is in upstream's enum but never set.
ValidationStatus = Literal["PENDING", "ONGOING", "VALID", "INVALID"]

RUN_STATUSES: Final[tuple[RunStatus, ...]] = get_args(RunStatus)

#: Validation still running: ``upsert_graph`` keeps waiting. ONGOING counts too, although nothing
#: sets it (§4.4): upstream's SDK takes it as final and returns an unverified graph (§8.9).
VALIDATING: Final[frozenset[ValidationStatus]] = frozenset({"PENDING", "ONGOING"})

#: States still on their way: while a run has one, it is PENDING (contract §3.6). The others
#: are final for that document (a retry is a new document, §3.2).
UNFINISHED_STATES: Final[frozenset[StateStatus]] = frozenset({"CREATED", "QUEUED", "EXECUTED"})

#: Final states that make a run FAILED once nothing is unfinished (contract §3.6).
ERRORED_STATES: Final[frozenset[StateStatus]] = frozenset({"ERRORED", "NEXT_CREATED_ERROR"})


def run_status(counts: Mapping[str, int]) -> RunStatus:
    """A run's status from its per-status state counts (a run graph's ``execution_summary``),
    by the server's rule (contract §3.6): a run without states is FAILED."""
    if any(counts.get(status, 0) for status in UNFINISHED_STATES):
        return "PENDING"
    if any(counts.get(status, 0) for status in ERRORED_STATES):
        return "FAILED"
    return "SUCCESS" if any(counts.values()) else "FAILED"

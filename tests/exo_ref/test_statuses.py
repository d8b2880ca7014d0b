"""The status vocabulary: upstream's recorded values, the §3.6 run-status rule, and its
agreement with the fake's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exo_ref import StateStatus, ValidationStatus
from exo_ref._statuses import (
    ERRORED_STATES,
    RUN_STATUSES,
    UNFINISHED_STATES,
    VALIDATING,
    run_status,
)
from fake_state_manager._engine.views import run_summary
from fake_state_manager._store.documents import ALL_STATUSES, Run
from fake_state_manager._store.store import Store

STATE_STATUSES = get_args(StateStatus)
CORPUS = Path(__file__).parents[1] / "parity" / "upstream-corpus.json"


def _objects(answer: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object inside a recorded answer, nested ones included."""
    if isinstance(answer, dict):
        yield answer
        for value in answer.values():
            yield from _objects(value)
    elif isinstance(answer, list):
        for value in answer:
            yield from _objects(value)


RECORDED = list(_objects(json.loads(CORPUS.read_text(encoding="utf-8"))["conversations"]))


def test_the_vocabulary_is_upstreams() -> None:
    # Upstream's run graphs list every status, in its order (§7.2), in each execution_summary
    # it answered; the fake's store and response models take the statuses from here.
    orders = {tuple(o["execution_summary"]) for o in RECORDED if "execution_summary" in o}
    assert orders == {STATE_STATUSES}
    run_statuses = {r["status"] for o in RECORDED for r in o.get("runs", []) if "status" in r}
    assert run_statuses == set(RUN_STATUSES)  # the corpus has runs of all three
    validation = {o["validation_status"] for o in RECORDED if "validation_status" in o}
    assert validation  # the corpus has upserts and graph reads
    assert validation <= set(get_args(ValidationStatus))
    assert set(get_args(ValidationStatus)) >= VALIDATING
    assert ALL_STATUSES == STATE_STATUSES
    # The groupings are disjoint sets of known statuses.
    assert set(STATE_STATUSES) >= UNFINISHED_STATES | ERRORED_STATES
    assert not UNFINISHED_STATES & ERRORED_STATES


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        pytest.param({}, "FAILED", id="no-states"),
        pytest.param({"SUCCESS": 0, "CREATED": 0}, "FAILED", id="only-zero-counts"),
        pytest.param({"SUCCESS": 3}, "SUCCESS", id="all-succeeded"),
        pytest.param({"SUCCESS": 2, "PRUNED": 1, "RETRY_CREATED": 1}, "SUCCESS", id="retried"),
        pytest.param({"SUCCESS": 2, "ERRORED": 1}, "FAILED", id="errored"),
        pytest.param({"NEXT_CREATED_ERROR": 1}, "FAILED", id="next-created-error"),
        pytest.param({"ERRORED": 1, "QUEUED": 1}, "PENDING", id="pending-beats-errored"),
        pytest.param({"SUCCESS": 1, "EXECUTED": 1}, "PENDING", id="executed-is-unfinished"),
    ],
)
def test_run_status_follows_the_contract_rule(counts: dict[str, int], expected: str) -> None:
    assert run_status(counts) == expected


@given(st.dictionaries(st.sampled_from(STATE_STATUSES), st.integers(min_value=0, max_value=3)))
def test_run_status_agrees_with_the_fakes_runs_list(counts: dict[str, int]) -> None:
    # exo-ref run derives a run's status from its run graph; the runs list says it from the
    # server's own counters. The two must never tell a user different things.
    store = Store()
    store.run_counts["r"] = dict(counts)
    summary = run_summary(store, Run("r", "g", "ns", 0.0, 1))
    assert run_status(counts) == summary["status"]

"""``queued_timeout`` (an addition, ``--queued-timeout``): stuck QUEUED states are reclaimed.

A state QUEUED longer than the timeout without a report is errored through the normal §5 path
(the graph's retry policy applies); a late report then gets the contract's 400 (§2.8-§2.10).
Off by default: upstream has no lease. Every test runs on the in-memory store and on the SQLite
one (``storage=``), where the lease must also survive a restart.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from exo_ref._clock import ManualClock
from fake_state_manager._engine.engine import Engine, queued_timeout_error
from fake_state_manager._errors import ApiError
from fake_state_manager._store.sqlite import SqliteStorage
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import (
    START,
    START_MS,
    claim,
    claim_one,
    register,
    run_states,
    upsert_valid,
)

TIMEOUT = 30.0
MESSAGE = (
    "State was QUEUED for more than 30 s without a report (queued-timeout); treated as errored"
)

MakeEngine = Callable[..., Engine]  # the `make` fixture (conftest.py)


def _graph(engine: Engine, max_retries: int = 1) -> str:
    register(engine, "A")
    policy = {"max_retries": max_retries, "strategy": "FIXED", "backoff_factor": 500}
    upsert_valid(engine, "g", [graph_node("a")], retry_policy=policy)
    return str(engine.trigger(NAMESPACE, "g")["run_id"])


def _claimed_on_file(db: Path, clock: ManualClock, **engine_options: Any) -> str:
    """Claim the one state of a fresh run in an engine saved to ``db``, then close it (the
    dev server going down); returns the run id."""
    engine = Engine(clock=clock, storage=SqliteStorage.open(db), **engine_options)
    run_id = _graph(engine)
    claim_one(engine, "A")
    engine.close()
    return run_id


def test_the_message_names_the_timeout() -> None:
    assert queued_timeout_error(30.0) == MESSAGE
    assert "0.25 s" in queued_timeout_error(0.25)


def test_off_by_default_a_claimed_state_stays_queued_forever(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock)
    run_id = _graph(engine)
    claim_one(engine, "A")
    assert engine.next_due_time() is None  # nothing to wake up for
    clock.advance(365 * 86400.0)
    engine.check_invariants()
    assert [s["status"] for s in run_states(engine, run_id)] == ["QUEUED"]
    assert engine.store._leases == []  # the default pays nothing per claim


def test_an_expired_lease_errors_the_state_and_the_retry_policy_applies(
    make: MakeEngine,
) -> None:
    clock = ManualClock(START)
    engine = make(clock, queued_timeout=TIMEOUT)
    run_id = _graph(engine, max_retries=1)
    first = claim_one(engine, "A")
    assert engine.next_due_time() == START + TIMEOUT  # the clock-driven loop wakes for it
    clock.advance(TIMEOUT - 0.001)
    engine.check_invariants()
    assert [s["status"] for s in run_states(engine, run_id)] == ["QUEUED"]
    clock.advance(0.001)  # exactly the timeout: expired
    engine.check_invariants()  # any call sweeps first
    original, retry = run_states(engine, run_id)
    assert (original["id"], original["status"], original["error"]) == (
        first["state_id"],
        "RETRY_CREATED",
        MESSAGE,
    )
    assert (retry["status"], retry["retry_count"]) == ("CREATED", 1)
    assert retry["enqueue_after"] == START_MS + int(TIMEOUT * 1000) + 500  # FIXED 500 ms
    assert retry["fanout_id"] == original["fanout_id"]
    # The late reports of the first runtime: the contract's 400s (§2.8-§2.10).
    with pytest.raises(ApiError, match=r"^State is not queued$") as late:
        engine.executed(NAMESPACE, first["state_id"], outputs=[{}])
    assert late.value.status == 400
    with pytest.raises(ApiError, match=r"^State is not queued or executed$"):
        engine.errored(NAMESPACE, first["state_id"], error="late")
    with pytest.raises(ApiError, match=r"^State is not queued$"):
        engine.prune(NAMESPACE, first["state_id"], data={})
    # Another runtime picks the retry up when it is due and finishes the run.
    clock.advance_to(engine.next_due_time() or 0)
    second = claim_one(engine, "A")
    assert second["state_id"] == retry["id"]
    engine.executed(NAMESPACE, second["state_id"], outputs=[{}])
    assert engine.run_summary(run_id)["status"] == "SUCCESS"  # type: ignore[index]
    engine.check_invariants()


def test_without_retries_left_the_state_is_errored_and_the_run_fails(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, queued_timeout=TIMEOUT)
    run_id = _graph(engine, max_retries=0)
    claim_one(engine, "A")
    clock.advance(TIMEOUT)
    summary = engine.run_summary(run_id)
    assert summary is not None
    assert summary["status"] == "FAILED"
    (state,) = run_states(engine, run_id)
    assert (state["status"], state["error"]) == ("ERRORED", MESSAGE)
    assert engine.next_due_time() is None


def test_a_report_in_time_ends_the_lease(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, queued_timeout=TIMEOUT)
    register(engine, "A")
    register(engine, "B")
    upsert_valid(engine, "g", [graph_node("a", next_nodes=["b"]), graph_node("b")])
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    a = claim_one(engine, "A")
    clock.advance(TIMEOUT - 1)
    engine.executed(NAMESPACE, a["state_id"], outputs=[{}])
    b = claim_one(engine, "B")  # its own lease, from now
    assert engine.next_due_time() == clock.now() + TIMEOUT  # a's stale entry is skipped
    clock.advance(TIMEOUT - 1)
    engine.check_invariants()
    assert engine.states_of_run(run_id)[0]["status"] == "SUCCESS"
    engine.executed(NAMESPACE, b["state_id"], outputs=[{}])
    clock.advance(10 * TIMEOUT)
    engine.check_invariants()
    assert [s["status"] for s in run_states(engine, run_id)] == ["SUCCESS", "SUCCESS"]
    assert engine.next_due_time() is None


def test_a_state_claimed_again_gets_a_fresh_lease(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, queued_timeout=TIMEOUT)
    run_id = _graph(engine)
    state = claim_one(engine, "A")
    clock.advance(TIMEOUT - 1)
    engine.re_enqueue_after(NAMESPACE, state["state_id"], enqueue_after=1)  # a hand-back
    clock.advance(0.001)
    assert claim_one(engine, "A")["state_id"] == state["state_id"]
    clock.advance(TIMEOUT - 1)  # the first claim's deadline has passed, this one's has not
    engine.check_invariants()
    assert [s["status"] for s in run_states(engine, run_id)] == ["QUEUED"]
    clock.advance(1)
    engine.check_invariants()
    assert [s["status"] for s in run_states(engine, run_id)] == ["RETRY_CREATED", "CREATED"]


def test_many_claims_expire_in_deadline_order_in_one_sweep(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, queued_timeout=TIMEOUT)
    register(engine, "A")
    upsert_valid(engine, "g", [graph_node("a")], retry_policy={"max_retries": 0})
    runs = []
    for _ in range(5):
        runs.append(engine.trigger(NAMESPACE, "g")["run_id"])
        claim(engine, "A")
        clock.advance(1)
    clock.advance(TIMEOUT)
    engine.check_invariants()
    for run_id in runs:
        assert engine.run_summary(run_id)["status"] == "FAILED"  # type: ignore[index]


def test_the_lease_survives_a_restart_on_the_same_database(tmp_path: Path) -> None:
    db = tmp_path / "lease.db"
    clock = ManualClock(START)
    run_id = _claimed_on_file(db, clock, queued_timeout=TIMEOUT)
    clock.advance(TIMEOUT / 2)
    engine = Engine(clock=clock, storage=SqliteStorage.open(db), queued_timeout=TIMEOUT)
    assert engine.next_due_time() == START + TIMEOUT  # from the claim, not from the restart
    clock.advance(TIMEOUT / 2)
    engine.check_invariants()
    assert [s["status"] for s in run_states(engine, run_id)] == ["RETRY_CREATED", "CREATED"]
    engine.close()
    # ... and the expiry itself was saved.
    engine = Engine(clock=clock, storage=SqliteStorage.open(db))
    assert [s["status"] for s in run_states(engine, run_id)] == ["RETRY_CREATED", "CREATED"]
    engine.close()


def test_a_state_claimed_without_a_lease_gets_one_from_its_claim_time(tmp_path: Path) -> None:
    # Claimed by a dev server started without --queued-timeout; restarted with it.
    db = tmp_path / "later.db"
    clock = ManualClock(START)
    run_id = _claimed_on_file(db, clock)
    clock.advance(TIMEOUT + 5)
    engine = Engine(clock=clock, storage=SqliteStorage.open(db), queued_timeout=TIMEOUT)
    engine.check_invariants()  # already past its deadline: expired by the first call
    assert next(s["status"] for s in run_states(engine, run_id)) == "RETRY_CREATED"
    engine.close()


def test_a_row_without_queued_at_is_leased_from_the_load(tmp_path: Path) -> None:
    # A file written before states recorded their claim time.
    db = tmp_path / "old.db"
    clock = ManualClock(START)
    run_id = _claimed_on_file(db, clock)
    with sqlite3.connect(db) as conn:
        ((state_id, doc),) = conn.execute("SELECT id, doc FROM states").fetchall()
        fields = json.loads(doc)
        del fields["queued_at"]
        conn.execute("UPDATE states SET doc = ? WHERE id = ?", (json.dumps(fields), state_id))
    conn.close()
    clock.advance(1000)
    engine = Engine(clock=clock, storage=SqliteStorage.open(db), queued_timeout=TIMEOUT)
    assert engine.next_due_time() == clock.now() + TIMEOUT
    clock.advance(TIMEOUT)
    engine.check_invariants()
    assert next(s["status"] for s in run_states(engine, run_id)) == "RETRY_CREATED"
    engine.close()


def test_the_claim_time_is_not_a_served_field(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, queued_timeout=TIMEOUT)
    run_id = _graph(engine)
    claim_one(engine, "A")
    (state,) = run_states(engine, run_id)
    assert "queued_at" not in state


@pytest.mark.parametrize("bad", [0.0, -1.0, 0.0001, float("nan"), float("inf")])
def test_a_timeout_below_one_millisecond_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"queued_timeout must be at least 0\.001 s"):
        Engine(queued_timeout=bad)

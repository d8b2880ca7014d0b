"""``retain_runs`` / ``retain_hours`` (an addition, ``--retain-runs`` / ``--retain-hours``).

The earliest-finished runs beyond the bound are dropped whole (states, store values, counters,
unique keys; rows too with a database); a PENDING run never is. Every test runs on the in-memory
store and on the SQLite one, and checks the store's invariants after the drops.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from exo_ref._clock import ManualClock
from fake_state_manager._engine import retention
from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from fake_state_manager._store.sqlite import SqliteStorage
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import (
    START,
    claim,
    claim_one,
    fan_in_graph,
    register,
    upsert_valid,
)

MakeEngine = Callable[..., Engine]  # the `make` fixture (conftest.py)


def _graph(engine: Engine) -> None:
    register(engine, "A")
    register(engine, "B")
    upsert_valid(
        engine, "g", [graph_node("a", next_nodes=["b"]), graph_node("b")],
        retry_policy={"max_retries": 0},
    )


def _finish(engine: Engine, clock: ManualClock, *, fail: bool = False) -> str:
    """Trigger one run and drive it to SUCCESS (or FAILED); return its id."""
    run_id = str(engine.trigger(NAMESPACE, "g", store={"k": "v"})["run_id"])
    a = claim_one(engine, "A")
    if fail:
        engine.errored(NAMESPACE, a["state_id"], error="boom")
    else:
        engine.executed(NAMESPACE, a["state_id"], outputs=[{}])
        engine.executed(NAMESPACE, claim_one(engine, "B")["state_id"], outputs=[{}])
    clock.advance(1)
    return run_id


def _gone(engine: Engine, run_id: str) -> bool:
    store = engine.store
    return (
        run_id not in store.runs
        and run_id not in store.run_states
        and run_id not in store.run_counts
        and run_id not in store.store_values
        and not any(s.run_id == run_id for s in store.states.values())
    )


def test_off_by_default_every_run_is_kept(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock)
    _graph(engine)
    runs = [_finish(engine, clock) for _ in range(5)]
    clock.advance(10 * 365 * 86400.0)
    assert engine.list_runs(NAMESPACE, 1, 0)["total"] == 5
    assert all(engine.run_summary(r) is not None for r in runs)
    assert engine.retention is None


def test_retain_runs_keeps_the_latest_finished_runs(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, retain_runs=2)
    _graph(engine)
    runs = []
    for n in range(6):
        runs.append(_finish(engine, clock, fail=n % 2 == 1))  # FAILED runs are finished too
        engine.check_invariants()  # a call: sweeps first, then checks every index
    assert [r for r in runs if not _gone(engine, r)] == runs[-2:]
    listed = engine.list_runs(NAMESPACE, 1, 10)
    assert listed["total"] == 2
    assert [r["run_id"] for r in listed["runs"]] == [runs[-1], runs[-2]]  # newest first
    assert engine.retention is not None
    assert engine.retention.dropped_runs == 4
    with pytest.raises(ApiError, match="State not found"):
        engine.manual_retry(NAMESPACE, "0" * 24, fanout_id="x")


def test_a_pending_run_is_never_dropped_however_old(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, retain_runs=1, retain_hours=1.0)
    _graph(engine)
    stuck = str(engine.trigger(NAMESPACE, "g")["run_id"])
    held = claim_one(engine, "A")  # QUEUED forever (no lease)
    finished = [_finish(engine, clock) for _ in range(3)]
    clock.advance(48 * 3600.0)
    engine.check_invariants()
    assert not _gone(engine, stuck)
    assert engine.run_summary(stuck)["status"] == "PENDING"  # type: ignore[index]
    assert all(_gone(engine, r) for r in finished)  # the last one: older than an hour
    # Once it finishes it is an ordinary finished run: the newest one, which the bounds keep.
    engine.executed(NAMESPACE, held["state_id"], outputs=[{}])
    engine.executed(NAMESPACE, claim_one(engine, "B")["state_id"], outputs=[{}])
    engine.check_invariants()
    assert engine.run_summary(stuck)["status"] == "SUCCESS"  # type: ignore[index]


def test_retain_hours_drops_runs_by_the_time_they_finished(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, retain_hours=2.0)
    _graph(engine)
    early = _finish(engine, clock)  # finished at START; _finish then moves 1 s on
    clock.advance(3600.0)
    late = _finish(engine, clock)  # finished at START + 3601 s
    clock.advance_to(START + 7200 - 1)  # early finished 2 h - 1 s ago
    engine.check_invariants()
    assert not _gone(engine, early)
    clock.advance(1)  # exactly 2 h
    engine.check_invariants()
    assert _gone(engine, early)
    assert not _gone(engine, late)
    clock.advance_to(START + 3601 + 7200)
    engine.check_invariants()
    assert _gone(engine, late)
    assert engine.list_runs(NAMESPACE, 1, 0) == {
        "namespace": NAMESPACE, "total": 0, "page": 1, "size": 0, "runs": []
    }


def test_a_run_made_pending_again_leaves_the_finished_order(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, retain_runs=2)
    _graph(engine)
    first = _finish(engine, clock, fail=True)
    second = _finish(engine, clock)
    (failed,) = [s for s in engine.states_of_run(first) if s["status"] == "ERRORED"]
    engine.manual_retry(NAMESPACE, failed["id"], fanout_id="again")  # first: PENDING again
    retry = claim_one(engine, "A")  # held while another run finishes
    third = _finish(engine, clock)
    engine.check_invariants()
    assert not _gone(engine, first)  # PENDING: not in the finished order at all
    assert not _gone(engine, second)
    assert not _gone(engine, third)
    engine.executed(NAMESPACE, retry["state_id"], outputs=[{}])
    engine.executed(NAMESPACE, claim_one(engine, "B")["state_id"], outputs=[{}])
    engine.check_invariants()
    # first finished again, last: now second is the earliest-finished of three.
    assert _gone(engine, second)
    assert not _gone(engine, first)
    assert not _gone(engine, third)


def test_unites_and_fan_out_leave_no_index_behind(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, retain_runs=0)
    fan_in_graph(engine, target="r")
    for _ in range(3):
        run_id = engine.trigger(NAMESPACE, "g")["run_id"]
        engine.executed(NAMESPACE, claim_one(engine, "R")["state_id"], outputs=[{"v": "1"}])
        items = [{"item": str(i)} for i in range(4)]
        engine.executed(NAMESPACE, claim_one(engine, "S")["state_id"], outputs=items)
        for state in claim(engine, "W"):
            engine.executed(NAMESPACE, state["state_id"], outputs=[{"done": "y"}])
        engine.executed(NAMESPACE, claim_one(engine, "M")["state_id"], outputs=[{}])
        engine.check_invariants()
        assert _gone(engine, run_id)
    store = engine.store
    assert store.states == {}
    assert store.runs == {}
    assert store.runs_by_namespace == {}
    assert store._descendants == {}
    assert store._unique == set()
    assert store._fingerprints == set()
    assert store.run_counts == {}
    assert store.store_values == {}


def test_memory_stays_bounded_under_a_stream_of_runs(make: MakeEngine) -> None:
    clock = ManualClock(START)
    engine = make(clock, retain_runs=5)
    _graph(engine)
    for _ in range(60):
        _finish(engine, clock)
    engine.check_invariants()
    store = engine.store
    assert len(store.runs) == 5
    assert len(store.states) == 10
    assert len(store._descendants) <= 5
    assert engine.retention is not None
    assert len(engine.retention._order) <= 6  # stale entries do not pile up


def test_one_call_drops_at_most_a_budget_of_states(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A backlog: 20 finished runs of 2 states kept without a bound, then a restart with one.
    db = tmp_path / "backlog.db"
    clock = ManualClock(START)
    engine = Engine(clock=clock, storage=SqliteStorage.open(db))
    _graph(engine)
    runs = [_finish(engine, clock) for _ in range(20)]
    engine.close()
    monkeypatch.setattr(retention, "DROP_BUDGET", 5)
    engine = Engine(clock=clock, storage=SqliteStorage.open(db), retain_runs=0)
    assert engine.retention is not None
    assert engine.retention.finished_runs() == 20
    engine.list_runs(NAMESPACE, 1, 1)
    assert engine.retention.dropped_states == 6  # three whole runs: 2 + 2 + 2 >= 5
    assert [r for r in runs if _gone(engine, r)] == runs[:3]  # the earliest-finished first
    for _ in range(10):
        engine.list_runs(NAMESPACE, 1, 1)
    engine.check_invariants()
    assert engine.store.runs == {}
    engine.close()
    engine = Engine(clock=clock, storage=SqliteStorage.open(db))
    assert engine.store.runs == {}
    assert engine.store.states == {}
    engine.close()


def test_a_restart_keeps_the_finishing_order(tmp_path: Path) -> None:
    db = tmp_path / "order.db"
    clock = ManualClock(START)
    engine = Engine(clock=clock, storage=SqliteStorage.open(db))
    _graph(engine)
    first = _finish(engine, clock, fail=True)
    second = _finish(engine, clock)
    (failed,) = [s for s in engine.states_of_run(first) if s["status"] == "ERRORED"]
    engine.manual_retry(NAMESPACE, failed["id"], fanout_id="again")
    clock.advance(5)
    engine.executed(NAMESPACE, claim_one(engine, "A")["state_id"], outputs=[{}])
    engine.executed(NAMESPACE, claim_one(engine, "B")["state_id"], outputs=[{}])  # first: last
    engine.close()
    engine = Engine(clock=clock, storage=SqliteStorage.open(db), retain_runs=1)
    engine.check_invariants()
    assert _gone(engine, second)
    assert not _gone(engine, first)
    engine.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retain_runs": -1}, "retain_runs must be an int >= 0"),
        ({"retain_runs": True}, "retain_runs must be an int >= 0"),
        ({"retain_hours": 0.0}, "retain_hours must be > 0"),
        ({"retain_hours": float("nan")}, "retain_hours must be > 0"),
    ],
)
def test_bad_bounds_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Engine(**options)  # type: ignore[arg-type]

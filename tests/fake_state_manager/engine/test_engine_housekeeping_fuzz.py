"""Random sequences of reports and clock moves with ``queued_timeout`` and retention on.

Whatever the order of claims, reports, hand-backs, manual retries, fan-outs, unites and time
jumps, every index (claim queues, leases, per-run and per-ancestor counters, unique keys, the
finished-run order, the PENDING cron index, graphs by namespace) must agree with the states
after every call; with a database, the file must hold exactly what memory holds at the end.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exo_ref._clock import ManualClock
from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from fake_state_manager._store.sqlite import SqliteStorage, snapshot
from tests.builders import NAMESPACE
from tests.fake_state_manager.engine_helpers import START, fan_in_graph

NODES = ["R", "S", "W", "M"]
OUTPUTS = {"R": [{"v": "1"}], "S": [{"item": "a"}, {"item": "b"}], "W": [{"done": "y"}], "M": [{}]}

operations = st.lists(
    st.one_of(
        st.tuples(st.just("trigger")),
        st.tuples(st.just("drive")),
        st.tuples(st.just("claim"), st.sampled_from(NODES), st.integers(1, 3)),
        st.tuples(
            st.sampled_from(["executed", "errored", "prune", "re_enqueue", "manual_retry"]),
            st.integers(0, 30),
        ),
        st.tuples(st.just("advance"), st.sampled_from([0.5, 5.0, 20.0, 3600.0])),
    ),
    max_size=40,
)


def _apply(engine: Engine, clock: ManualClock, held: list[str], op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "trigger":
        engine.trigger(NAMESPACE, "g")
    elif kind == "claim":
        answer = engine.enqueue(NAMESPACE, nodes=[op[1]], batch_size=op[2])
        held.extend(s["state_id"] for s in answer["states"])
    elif kind == "advance":
        clock.advance(op[1])
    elif kind == "drive":  # a healthy runtime: report everything ready until nothing is
        for _ in range(10):
            answer = engine.enqueue(NAMESPACE, nodes=NODES, batch_size=50)
            if not answer["states"]:
                break
            for claimed in answer["states"]:
                outputs = OUTPUTS[claimed["node_name"]]
                engine.executed(NAMESPACE, claimed["state_id"], outputs=outputs)
    else:
        ids = held or list(engine.store.states)
        if not ids:
            return
        state_id = ids[op[1] % len(ids)]
        state = engine.store.states.get(state_id)
        try:
            if kind == "executed":
                outputs = OUTPUTS[state.node_name] if state is not None else [{}]
                engine.executed(NAMESPACE, state_id, outputs=outputs)
            elif kind == "errored":
                engine.errored(NAMESPACE, state_id, error="boom")
            elif kind == "prune":
                engine.prune(NAMESPACE, state_id, data={})
            elif kind == "re_enqueue":
                engine.re_enqueue_after(NAMESPACE, state_id, enqueue_after=10)
            else:
                engine.manual_retry(NAMESPACE, state_id, fanout_id=f"f{len(held)}{op[1]}")
        except ApiError:
            pass  # a late or unknown report: the point is that nothing breaks


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
@given(ops=operations, retain_runs=st.sampled_from([0, 1, 3]))
def test_indexes_hold_under_random_reports_and_time(
    backend: str, ops: list[tuple[Any, ...]], retain_runs: int
) -> None:
    clock = ManualClock(START)
    with tempfile.TemporaryDirectory() as folder:
        storage = SqliteStorage.open(Path(folder) / "f.db") if backend == "sqlite" else None
        engine = Engine(
            clock=clock, rng=random.Random(0), storage=storage, queued_timeout=10.0,
            retain_runs=retain_runs, retain_hours=2.0,
        )
        try:
            fan_in_graph(engine, target="r", retry_policy={"max_retries": 1,
                                                            "backoff_factor": 1000})
            held: list[str] = []
            for op in ops:
                _apply(engine, clock, held, op)
                engine.check_invariants()
                assert engine.retention is not None
                assert engine.retention.finished_runs() <= retain_runs
            if storage is not None:
                reloaded = storage.load(int(clock.now() * 1000))
                assert snapshot(reloaded) == snapshot(engine.store)
        finally:
            engine.close()

"""The in-memory store: indexes, claims, unique keys, invariants (contract §3.1, §3.3)."""

from __future__ import annotations

import re
import tracemalloc
from collections import OrderedDict

import pytest

from fake_state_manager._errors import DuplicateKeyError
from fake_state_manager._store.documents import (
    CREATED,
    ERRORED,
    QUEUED,
    SUCCESS,
    Run,
    State,
    iso_utc,
)
from fake_state_manager._store.store import Store, check_invariants
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import make_engine, register, upsert_valid

NOW_MS = 1_000_000


def _state(
    store: Store,
    node_name: str = "A",
    *,
    run_id: str = "r1",
    enqueue_after: int = NOW_MS,
    parents: dict[str, str] | None = None,
    fanout_id: str | None = None,
    status: str = CREATED,
) -> State:
    if run_id not in store.runs:
        store.insert_run(Run(run_id, "g", NAMESPACE, 0.0, store.next_seq()))
    state_id = store.new_id()
    return State(
        id=state_id,
        seq=store.next_seq(),
        node_name=node_name,
        namespace_name=NAMESPACE,
        identifier=node_name.lower(),
        graph_name="g",
        run_id=run_id,
        status=status,
        inputs={},
        parents=parents or {},
        enqueue_after=enqueue_after,
        fanout_id=fanout_id or state_id,
        created_at=0.0,
        updated_at=0.0,
    )


def _add(store: Store, *args: str, **kwargs: object) -> State:
    state = _state(store, *args, **kwargs)  # type: ignore[arg-type]
    store.insert_state(state, NOW_MS)
    return state


def test_ids_are_unique_24_hex() -> None:
    store = Store(id_prefix=0xABCDEF01)
    ids = {store.new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"abcdef01[0-9a-f]{16}", i) for i in ids)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(1_767_225_600.0, "2026-01-01T00:00:00", id="whole-second"),
        pytest.param(1_767_225_600.1234, "2026-01-01T00:00:00.123000", id="millis-truncated"),
    ],
)
def test_iso_utc_has_millisecond_precision_and_no_offset(seconds: float, text: str) -> None:
    assert iso_utc(seconds) == text


def test_claim_takes_oldest_first_across_node_names() -> None:
    store = Store()
    a1, b1, a2, c1 = (_add(store, name) for name in ["A", "B", "A", "C"])
    claimed = store.claim(NAMESPACE, ["B", "A"], 2, NOW_MS)
    assert claimed == [a1, b1]
    assert [s.status for s in claimed] == [QUEUED, QUEUED]
    assert store.claim(NAMESPACE, ["A", "B", "C"], 10, NOW_MS) == [a2, c1]
    assert store.claim(NAMESPACE, ["A", "B", "C"], 10, NOW_MS) == []
    assert store.run_counts["r1"][QUEUED] == 4
    check_invariants(store)


def test_claim_respects_namespace_limit_and_duplicates_in_names() -> None:
    store = Store()
    first = _add(store)
    _add(store)
    assert store.claim("other", ["A"], 5, NOW_MS) == []
    assert store.claim(NAMESPACE, ["A", "A"], 1, NOW_MS) == [first]
    assert store.claim(NAMESPACE, ["A"], 0, NOW_MS) == []
    check_invariants(store)


def test_delayed_states_become_claimable_when_due() -> None:
    store = Store()
    late = _add(store, enqueue_after=NOW_MS + 500)
    early = _add(store, enqueue_after=NOW_MS + 100)
    assert store.next_due_ms() == NOW_MS + 100
    assert store.claim(NAMESPACE, ["A"], 5, NOW_MS + 99) == []
    assert store.claim(NAMESPACE, ["A"], 5, NOW_MS + 500) == [early, late]
    assert store.next_due_ms() is None
    check_invariants(store)


def test_status_changes_leave_the_claim_indexes() -> None:
    store = Store()
    ready = _add(store)
    delayed = _add(store, enqueue_after=NOW_MS + 10)
    store.set_status(ready, ERRORED)
    store.set_status(delayed, SUCCESS)
    check_invariants(store)
    assert store.claim(NAMESPACE, ["A"], 5, NOW_MS + 10) == []
    assert store.next_due_ms() is None
    with pytest.raises(ValueError, match="set_created"):
        store.set_status(ready, CREATED)


def test_set_created_reschedules() -> None:
    store = Store()
    state = _add(store)
    store.set_created(state, NOW_MS + 50, NOW_MS)  # CREATED -> later
    check_invariants(store)
    assert store.claim(NAMESPACE, ["A"], 5, NOW_MS) == []
    store.set_created(state, NOW_MS + 20, NOW_MS)  # the +50 entry goes stale
    assert store.claim(NAMESPACE, ["A"], 5, NOW_MS + 20) == [state]
    store.set_created(state, NOW_MS, NOW_MS)  # QUEUED -> CREATED, due at once
    assert store.run_counts["r1"] == {CREATED: 1, QUEUED: 0}
    check_invariants(store)
    assert store.claim(NAMESPACE, ["A"], 5, NOW_MS + 60) == [state]
    assert store.claim(NAMESPACE, ["A"], 5, NOW_MS + 60) == []


def test_unique_seven_tuple_and_fingerprint() -> None:
    store = Store()
    original = _add(store, fanout_id="f")
    twin = _state(store, fanout_id="f")
    with pytest.raises(DuplicateKeyError):
        store.insert_state(twin, NOW_MS)
    twin.retry_count = 1
    store.insert_state(twin, NOW_MS)
    unite = _state(store, "M")
    unite.does_unites, unite.state_fingerprint = True, "fp"
    store.insert_state(unite, NOW_MS)
    again = _state(store, "M")
    again.does_unites, again.state_fingerprint = True, "fp"
    with pytest.raises(DuplicateKeyError):
        store.insert_state(again, NOW_MS)
    assert again.id not in store.states
    assert original.id in store.states
    check_invariants(store)


def test_descendant_counts_follow_status_changes() -> None:
    store = Store()
    root = _add(store, "R")
    child = _add(store, "C", parents={"r": root.id})
    grandchild = _add(store, "G", parents={"r": root.id, "c": child.id})
    assert store.descendant_counts(root.id, NAMESPACE) == {CREATED: 2}
    store.claim(NAMESPACE, ["G"], 1, NOW_MS)
    store.set_status(grandchild, SUCCESS)
    assert store.descendant_counts(root.id, NAMESPACE) == {CREATED: 1, QUEUED: 0, SUCCESS: 1}
    assert store.descendant_counts(child.id, NAMESPACE) == {CREATED: 0, QUEUED: 0, SUCCESS: 1}
    assert store.descendant_counts(root.id, "other") == {}
    check_invariants(store)


@pytest.mark.parametrize("corruption", ["status", "twice", "counter", "lost", "descendants"])
def test_check_invariants_detects_corruption(corruption: str) -> None:
    store = Store()
    root = _add(store, "R")
    state = _add(store, parents={"r": root.id})
    check_invariants(store)
    if corruption == "status":
        state.status = QUEUED  # bypassing set_status leaves it claimable
    elif corruption == "twice":
        store._ready[(NAMESPACE, "B")] = OrderedDict({state.id: state})
    elif corruption == "counter":
        store.run_counts["r1"][SUCCESS] = 1
    elif corruption == "lost":
        store._ready[(NAMESPACE, "A")].pop(state.id)
    else:
        store._descendants[(root.id, NAMESPACE)][CREATED] = 5
    with pytest.raises(AssertionError):
        check_invariants(store)


def test_memory_per_stored_state_is_well_under_4_kib() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=["x"], outputs=["y"])
    register(engine, "B", inputs=["y"], outputs=[])
    upsert_valid(
        engine,
        "g",
        [
            graph_node("a", inputs={"x": "some input value"}, next_nodes=["b"]),
            graph_node("b", inputs={"y": "${{ a.outputs.y }}"}),
        ],
    )
    count = 300
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            engine.trigger(NAMESPACE, "g")
        for state in engine.enqueue(NAMESPACE, nodes=["A"], batch_size=count)["states"]:
            engine.executed(NAMESPACE, state["state_id"], outputs=[{"y": "an output value"}])
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    stored = len(engine.store.states)
    assert stored == 2 * count
    assert (after - before) / stored < 4096
    engine.check_invariants()

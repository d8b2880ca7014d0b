"""Engine transitions of single states: trigger, enqueue, executed, errored, signals (§3-§6)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import (
    START,
    START_MS,
    claim,
    claim_one,
    make_engine,
    register,
    run_states,
    statuses,
    upsert,
    upsert_valid,
)


def _two_step(engine: Engine, **kwargs: Any) -> str:
    """a -> b, b's input taken from a's output; returns a run id."""
    register(engine, "A", inputs=["x"], outputs=["y"])
    register(engine, "B", inputs=["y"], outputs=[])
    upsert_valid(
        engine,
        "g",
        [
            graph_node("a", inputs={"x": "hello"}, next_nodes=["b"]),
            graph_node("b", inputs={"y": "${{ a.outputs.y }}!"}),
        ],
        **kwargs,
    )
    return str(engine.trigger(NAMESPACE, "g")["run_id"])


def test_trigger_creates_one_root_state_with_resolved_inputs() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    (root,) = engine.states_of_run(run_id)
    assert root["status"] == "CREATED"
    assert root["identifier"] == "a"
    assert root["node_name"] == "A"
    assert root["inputs"] == {"x": "hello"}
    assert root["parents"] == {}
    assert root["enqueue_after"] == START_MS
    assert re.fullmatch(r"[0-9a-f]{24}", root["id"])
    assert root["created_at"] == "2026-01-01T00:00:00"
    engine.check_invariants()


def test_trigger_inputs_override_only_known_root_keys() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=["x"], outputs=[])
    upsert_valid(engine, "g", [graph_node("a", inputs={"x": "template"})])
    run_id = engine.trigger(NAMESPACE, "g", inputs={"x": "body", "extra": "ignored"})["run_id"]
    assert engine.states_of_run(run_id)[0]["inputs"] == {"x": "body"}


def test_trigger_errors() -> None:
    engine, _ = make_engine()
    with pytest.raises(ApiError) as info:
        engine.trigger(NAMESPACE, "missing")
    assert (info.value.status, info.value.detail) == (
        404,
        "Graph template not found for namespace ns and graph missing",
    )
    upsert(engine, "unregistered", nodes=[graph_node("a")], secrets={})
    assert engine.get_graph(NAMESPACE, "unregistered")["validation_status"] == "INVALID"
    with pytest.raises(ApiError) as info:
        engine.trigger(NAMESPACE, "unregistered")
    assert (info.value.status, info.value.detail) == (400, "Graph template is not valid")


def test_trigger_store_values_defaults_and_missing_keys() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=["x"], outputs=[])
    upsert_valid(
        engine,
        "g",
        [graph_node("a", inputs={"x": "${{ store.k }}-${{ store.d }}"})],
        store_config={"required_keys": ["k"], "default_values": {"d": "dflt"}},
    )
    run_id = engine.trigger(NAMESPACE, "g", store={"k": "v"})["run_id"]
    assert engine.states_of_run(run_id)[0]["inputs"] == {"x": "v-dflt"}
    assert engine.store.store_values[run_id] == {"k": "v"}  # defaults are not stored
    with pytest.raises(ApiError) as info:
        engine.trigger(NAMESPACE, "g", store={"d": "x"})
    # The placeholder check (step 3) runs first and k is in neither store nor defaults.
    assert info.value.detail == "Invalid input: 400: Dependent k not found in store for root node a"


def test_missing_store_keys_after_placeholder_check() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=["x"], outputs=[])
    upsert_valid(
        engine,
        "g",
        [graph_node("a", inputs={"x": "lit"})],
        store_config={"required_keys": ["k1", "k2"]},
    )
    with pytest.raises(ApiError) as info:
        engine.trigger(NAMESPACE, "g", store={"k2": "v"})
    assert (info.value.status, info.value.detail) == (400, "Missing store keys: {'k1'}")
    assert engine.store.runs == {}


def test_start_delay_holds_the_root_until_due() -> None:
    engine, clock = make_engine()
    register(engine, "A", inputs=[], outputs=[])
    upsert_valid(engine, "g", [graph_node("a")])
    run_id = engine.trigger(NAMESPACE, "g", start_delay=5000)["run_id"]
    assert engine.states_of_run(run_id)[0]["enqueue_after"] == START_MS + 5000
    assert engine.next_due_time() == START + 5
    assert claim(engine, "A") == []
    clock.advance(4.999)
    assert claim(engine, "A") == []
    clock.advance(0.001)
    assert len(claim(engine, "A")) == 1
    assert engine.next_due_time() is None
    engine.check_invariants()


def test_enqueue_claims_each_state_once_in_creation_order() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=[], outputs=[])
    register(engine, "Other", inputs=[], outputs=[])
    upsert_valid(engine, "g", [graph_node("a")])
    upsert_valid(engine, "h", [graph_node("o", "Other")])
    runs = [engine.trigger(NAMESPACE, "g" if i % 2 else "h")["run_id"] for i in range(6)]
    first = engine.enqueue(NAMESPACE, nodes=["A", "Other"], batch_size=4)
    assert first["count"] == 4
    assert first["status"] == "QUEUED"
    assert first["namespace"] == NAMESPACE
    roots = [engine.states_of_run(r)[0]["id"] for r in runs]
    assert [s["state_id"] for s in first["states"]] == roots[:4]
    rest = engine.enqueue(NAMESPACE, nodes=["A", "Other"], batch_size=10)
    assert [s["state_id"] for s in rest["states"]] == roots[4:]
    empty = engine.enqueue(NAMESPACE, nodes=["A"], batch_size=10)
    assert empty == {"count": 0, "namespace": NAMESPACE, "status": "QUEUED", "states": []}
    engine.check_invariants()


@pytest.mark.parametrize(
    ("nodes", "batch_size"),
    [pytest.param([], 5, id="no-nodes"), pytest.param(["A"], 0, id="zero"), (["A"], -3)],
)
def test_enqueue_with_nothing_to_ask_for_claims_nothing(nodes: list[str], batch_size: int) -> None:
    engine, _ = make_engine()
    register(engine, "A")
    upsert_valid(engine, "g", [graph_node("a")])
    engine.trigger(NAMESPACE, "g")
    assert engine.enqueue(NAMESPACE, nodes=nodes, batch_size=batch_size)["count"] == 0


def test_enqueue_is_namespace_scoped() -> None:
    engine, _ = make_engine()
    register(engine, "A")
    upsert_valid(engine, "g", [graph_node("a")])
    engine.trigger(NAMESPACE, "g")
    assert engine.enqueue("other", nodes=["A"], batch_size=5)["count"] == 0
    assert engine.enqueue(NAMESPACE, nodes=["A"], batch_size=5)["count"] == 1


def test_enqueued_state_shape() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    state = claim_one(engine, "A")
    assert state == {
        "state_id": engine.states_of_run(run_id)[0]["id"],
        "node_name": "A",
        "identifier": "a",
        "inputs": {"x": "hello"},
        "created_at": "2026-01-01T00:00:00",
    }


def test_executed_creates_children_and_marks_success() -> None:
    engine, clock = make_engine()
    run_id = _two_step(engine)
    a = claim_one(engine, "A")
    clock.advance(1.5)
    assert engine.executed(NAMESPACE, a["state_id"], outputs=[{"y": "out"}]) == {
        "status": "EXECUTED"
    }
    (a_doc,) = run_states(engine, run_id, "a")
    assert a_doc["status"] == "SUCCESS"
    assert a_doc["outputs"] == {"y": "out"}
    assert a_doc["updated_at"] == "2026-01-01T00:00:01.500000"
    (b_doc,) = run_states(engine, run_id, "b")
    assert b_doc["status"] == "CREATED"
    assert b_doc["inputs"] == {"y": "out!"}
    assert b_doc["parents"] == {"a": a["state_id"]}
    b = claim_one(engine, "B")
    engine.executed(NAMESPACE, b["state_id"], outputs=[])
    assert statuses(engine, run_id, "b") == ["SUCCESS"]
    assert engine.run_summary(run_id)["status"] == "SUCCESS"  # type: ignore[index]
    engine.check_invariants()


def test_executed_errors() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    root_id = engine.states_of_run(run_id)[0]["id"]
    for bad in ["0" * 24, "not-an-object-id", ""]:
        with pytest.raises(ApiError) as info:
            engine.executed(NAMESPACE, bad, outputs=[])
        assert (info.value.status, info.value.detail) == (404, "State not found")
    with pytest.raises(ApiError) as info:
        engine.executed(NAMESPACE, root_id, outputs=[])  # still CREATED
    assert (info.value.status, info.value.detail) == (400, "State is not queued")
    assert engine.states_of_run(run_id)[0]["status"] == "CREATED"


def test_executed_ignores_the_path_namespace() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    a = claim_one(engine, "A")
    engine.executed("elsewhere", a["state_id"], outputs=[{"y": "1"}])
    assert statuses(engine, run_id, "a") == ["SUCCESS"]


def test_fan_out_makes_n_minus_one_extra_states_and_one_child_each() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    a = claim_one(engine, "A")
    engine.executed(NAMESPACE, a["state_id"], outputs=[{"y": str(i)} for i in range(3)])
    a_docs = run_states(engine, run_id, "a")
    assert [d["outputs"] for d in a_docs] == [{"y": "0"}, {"y": "1"}, {"y": "2"}]
    assert [d["status"] for d in a_docs] == ["SUCCESS"] * 3
    assert a_docs[0]["id"] == a["state_id"]
    assert len({d["fanout_id"] for d in a_docs}) == 3
    assert all(d["inputs"] == {"x": "hello"} and d["parents"] == {} for d in a_docs)
    b_docs = run_states(engine, run_id, "b")
    assert sorted(d["inputs"]["y"] for d in b_docs) == ["0!", "1!", "2!"]
    assert sorted(d["parents"]["a"] for d in b_docs) == sorted(d["id"] for d in a_docs)
    engine.check_invariants()


def test_leaf_fan_out_gives_ten_successes() -> None:
    # Contract §10 test_fan_out.
    engine, _ = make_engine()
    register(engine, "Node1", inputs=["message"], outputs=["count"])
    upsert_valid(engine, "g", [graph_node("node1", "Node1", inputs={"message": "Hello, world!"})])
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    state = claim_one(engine, "Node1")
    engine.executed(NAMESPACE, state["state_id"], outputs=[{"count": str(i)} for i in range(10)])
    summary = engine.run_summary(run_id)
    assert summary is not None
    assert (summary["success_count"], summary["total_count"], summary["status"]) == (
        10,
        10,
        "SUCCESS",
    )


def test_zero_outputs_continue_and_missing_output_is_next_created_error() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    a = claim_one(engine, "A")
    engine.executed(NAMESPACE, a["state_id"], outputs=[])
    (a_doc,) = run_states(engine, run_id, "a")
    assert a_doc["status"] == "NEXT_CREATED_ERROR"
    assert a_doc["outputs"] == {}
    assert "y" in a_doc["error"]
    assert run_states(engine, run_id, "b") == []
    assert engine.run_summary(run_id)["status"] == "FAILED"  # type: ignore[index]
    engine.check_invariants()


def test_non_string_output_is_next_created_error() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    a = claim_one(engine, "A")
    engine.executed(NAMESPACE, a["state_id"], outputs=[{"y": 5}])
    (a_doc,) = run_states(engine, run_id, "a")
    assert a_doc["status"] == "NEXT_CREATED_ERROR"
    assert a_doc["error"] == 'can only concatenate str (not "int") to str'


def test_store_value_and_default_reach_children() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=[], outputs=[])
    register(engine, "B", inputs=["s", "d"], outputs=[])
    upsert_valid(
        engine,
        "g",
        [
            graph_node("a", next_nodes=["b"]),
            graph_node(
                "b", inputs={"s": "${{ store.k }}", "d": "${{store.dk}}", "extra": "dropped"}
            ),
        ],
        store_config={"required_keys": ["k"], "default_values": {"dk": "dv"}},
    )
    run_id = engine.trigger(NAMESPACE, "g", store={"k": "kv"})["run_id"]
    engine.executed(NAMESPACE, claim_one(engine, "A")["state_id"], outputs=[{}])
    (b_doc,) = run_states(engine, run_id, "b")
    assert b_doc["inputs"] == {"s": "kv", "d": "dv"}


def test_child_field_missing_from_template_inputs_is_next_created_error() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=[], outputs=[])
    register(engine, "B", inputs=["z"], outputs=[])
    upsert_valid(
        engine, "g", [graph_node("a", next_nodes=["b"]), graph_node("b", inputs={"z": "1"})]
    )
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    register(engine, "B", inputs=["z", "w"], outputs=[])  # re-registered with a new field
    engine.executed(NAMESPACE, claim_one(engine, "A")["state_id"], outputs=[{}])
    (a_doc,) = run_states(engine, run_id, "a")
    assert a_doc["status"] == "NEXT_CREATED_ERROR"
    assert a_doc["error"] == "Field 'w' not found in inputs for template 'b'"


def test_errored_errors() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    root_id = engine.states_of_run(run_id)[0]["id"]
    with pytest.raises(ApiError) as info:
        engine.errored(NAMESPACE, "f" * 24, error="x")
    assert (info.value.status, info.value.detail) == (404, "State not found")
    with pytest.raises(ApiError) as info:
        engine.errored(NAMESPACE, root_id, error="x")
    assert (info.value.status, info.value.detail) == (400, "State is not queued or executed")
    claim_one(engine, "A")
    engine.store.set_status(engine.store.states[root_id], "EXECUTED")
    with pytest.raises(ApiError) as info:
        engine.errored(NAMESPACE, root_id, error="x")
    assert (info.value.status, info.value.detail) == (400, "State is already executed")


def test_errored_needs_the_template_in_the_path_namespace() -> None:
    engine, _ = make_engine()
    _two_step(engine)
    a = claim_one(engine, "A")
    with pytest.raises(ApiError) as info:
        engine.errored("other", a["state_id"], error="x")
    assert (info.value.status, info.value.detail) == (404, "Graph template not found")


def test_prune() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    root_id = engine.states_of_run(run_id)[0]["id"]
    with pytest.raises(ApiError) as info:
        engine.prune(NAMESPACE, root_id, data={})
    assert (info.value.status, info.value.detail) == (400, "State is not queued")
    with pytest.raises(ApiError) as info:
        engine.prune(NAMESPACE, "nope", data={})
    assert info.value.status == 404
    claim_one(engine, "A")
    assert engine.prune(NAMESPACE, root_id, data={"why": "done"}) == {
        "enqueue_after": START_MS,
        "status": "PRUNED",
    }
    (doc,) = engine.states_of_run(run_id)
    assert (doc["status"], doc["data"]) == ("PRUNED", {"why": "done"})
    summary = engine.run_summary(run_id)
    assert summary is not None
    assert (summary["success_count"], summary["status"]) == (1, "SUCCESS")
    engine.check_invariants()


def test_re_enqueue_after_revives_any_status() -> None:
    engine, clock = make_engine()
    run_id = _two_step(engine)
    a = claim_one(engine, "A")
    engine.errored(NAMESPACE, a["state_id"], error="boom")  # RETRY_CREATED
    clock.advance(10)
    answer = engine.re_enqueue_after(NAMESPACE, a["state_id"], enqueue_after=250)
    assert answer == {"enqueue_after": START_MS + 10_000 + 250, "status": "CREATED"}
    doc = next(d for d in engine.states_of_run(run_id) if d["id"] == a["state_id"])
    assert (doc["status"], doc["retry_count"], doc["error"]) == ("CREATED", 0, "boom")
    assert a["state_id"] not in [s["state_id"] for s in claim(engine, "A")]
    clock.advance(0.25)
    assert a["state_id"] in [s["state_id"] for s in claim(engine, "A")]
    with pytest.raises(ApiError):
        engine.re_enqueue_after(NAMESPACE, "x", enqueue_after=1)
    engine.check_invariants()


def test_re_enqueue_after_on_a_created_state_moves_it() -> None:
    engine, clock = make_engine()
    run_id = _two_step(engine)
    root_id = engine.states_of_run(run_id)[0]["id"]
    engine.re_enqueue_after(NAMESPACE, root_id, enqueue_after=1000)
    engine.check_invariants()
    assert claim(engine, "A") == []
    engine.re_enqueue_after(NAMESPACE, root_id, enqueue_after=2000)
    clock.advance(1)
    assert claim(engine, "A") == []  # the first, stale schedule does not fire
    clock.advance(1)
    assert len(claim(engine, "A")) == 1
    engine.check_invariants()


def test_manual_retry_creates_a_fresh_state_and_409_on_duplicate() -> None:
    engine, clock = make_engine()
    run_id = _two_step(engine)
    a = claim_one(engine, "A")
    engine.errored(NAMESPACE, a["state_id"], error="x")
    clock.advance(100)
    retry_id = next(d for d in engine.states_of_run(run_id) if d["retry_count"] == 1)["id"]
    engine.store.set_status(engine.store.states[retry_id], "ERRORED")
    answer = engine.manual_retry(NAMESPACE, retry_id, fanout_id="f-1")
    assert answer["status"] == "CREATED"
    new = next(d for d in engine.states_of_run(run_id) if d["id"] == answer["id"])
    assert new["retry_count"] == 0
    assert (new["fanout_id"], new["manual_retry_fanout_id"]) == ("f-1", "f-1")
    assert new["enqueue_after"] == START_MS + 100_000
    assert new["inputs"] == {"x": "hello"}
    old = next(d for d in engine.states_of_run(run_id) if d["id"] == retry_id)
    assert old["status"] == "RETRY_CREATED"
    before = engine.states_of_run(run_id)
    with pytest.raises(ApiError) as info:
        engine.manual_retry(NAMESPACE, retry_id, fanout_id="f-1")
    assert (info.value.status, info.value.detail) == (409, "Duplicate retry state detected")
    assert engine.states_of_run(run_id) == before
    engine.check_invariants()


def test_manual_retry_with_the_originals_fanout_id_is_409() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    (root,) = engine.states_of_run(run_id)
    with pytest.raises(ApiError) as info:
        engine.manual_retry(NAMESPACE, root["id"], fanout_id=root["fanout_id"])
    assert info.value.status == 409
    assert engine.states_of_run(run_id)[0]["status"] == "CREATED"


def test_manual_retry_filters_by_namespace() -> None:
    engine, _ = make_engine()
    run_id = _two_step(engine)
    root_id = engine.states_of_run(run_id)[0]["id"]
    with pytest.raises(ApiError) as info:
        engine.manual_retry("other", root_id, fanout_id="f")
    assert (info.value.status, info.value.detail) == (404, "State not found")


def test_state_secrets_returns_every_graph_secret() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=[], outputs=[], secrets=["api"])
    upsert_valid(engine, "g", [graph_node("a")], secrets={"api": "s3cr3t", "other": "o"})
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    root_id = engine.states_of_run(run_id)[0]["id"]
    assert engine.state_secrets(NAMESPACE, root_id) == {"secrets": {"api": "s3cr3t", "other": "o"}}
    listed = engine.list_graphs(NAMESPACE)["templates"][0]["secrets"]
    assert set(listed) == {"api", "other"}
    assert "s3cr3t" not in listed.values()
    assert engine.get_graph(NAMESPACE, "g")["secrets"] == {"api": True, "other": True}
    for namespace, state_id in [(NAMESPACE, "a" * 24), ("other", root_id), (NAMESPACE, "zz")]:
        with pytest.raises(ApiError) as info:
            engine.state_secrets(namespace, state_id)
        assert (info.value.status, info.value.detail) == (404, "State not found")


def test_next_due_time_is_never_a_past_state_time() -> None:
    engine, clock = make_engine()
    register(engine, "A")
    upsert_valid(engine, "g", [graph_node("a")])
    engine.trigger(NAMESPACE, "g", start_delay=1000)
    engine.trigger(NAMESPACE, "g", start_delay=3000)
    clock.advance(2)
    assert engine.next_due_time() == START + 3
    assert len(claim(engine, "A")) == 1
    clock.advance(5)
    assert engine.next_due_time() is None
    engine.check_invariants()


def test_delays_beyond_int64_are_refused_without_changes() -> None:
    engine, _ = make_engine()
    register(engine, "A")
    upsert_valid(engine, "g", [graph_node("a")])
    with pytest.raises(ApiError) as info:
        engine.trigger(NAMESPACE, "g", start_delay=2**63)
    assert info.value.status == 400
    assert engine.store.runs == {}
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    root_id = engine.states_of_run(run_id)[0]["id"]
    with pytest.raises(ApiError) as info:
        engine.re_enqueue_after(NAMESPACE, root_id, enqueue_after=10**30)
    assert info.value.status == 400
    assert engine.states_of_run(run_id)[0]["enqueue_after"] == START_MS
    engine.check_invariants()


def test_schedule_mark_moves_whenever_the_next_due_time_can_become_earlier() -> None:
    # FakeStateManager looks at next_due_time() after a request only when the mark moved: a
    # wake-up time scheduled without moving it would never wake the cron loop.
    engine, clock = make_engine()
    _two_step(engine)
    mark = engine.schedule_mark()
    a = claim_one(engine, "A")  # a claim without a lease schedules nothing
    assert engine.schedule_mark() == mark
    engine.re_enqueue_after(NAMESPACE, a["state_id"], enqueue_after=5000)
    assert engine.schedule_mark() != mark
    assert engine.next_due_time() == START + 5
    mark = engine.schedule_mark()
    clock.advance(5)
    a = claim_one(engine, "A")
    engine.executed(NAMESPACE, a["state_id"], outputs=[{"y": "v"}])  # a child due at once
    assert engine.schedule_mark() == mark
    b = claim_one(engine, "B")
    engine.errored(NAMESPACE, b["state_id"], error="boom")  # a retry after its delay
    assert engine.schedule_mark() != mark
    assert engine.next_due_time() is not None

"""Read endpoints at the engine level: runs, run graph, node details, nodes, namespaces (§7)."""

from __future__ import annotations

import pytest

from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import (
    REGISTERED_NODE_KEYS,
    claim_one,
    make_engine,
    register,
    run_states,
    schema,
    upsert_valid,
)


def _chain(engine: Engine) -> None:
    register(engine, "A", inputs=[], outputs=["x"])
    register(engine, "B", inputs=[], outputs=[])
    upsert_valid(engine, "g", [graph_node("a", next_nodes=["b"]), graph_node("b")])


def test_runs_are_listed_newest_first_with_pagination() -> None:
    engine, clock = make_engine()
    _chain(engine)
    runs = []
    for _ in range(5):
        runs.append(engine.trigger(NAMESPACE, "g")["run_id"])
        clock.advance(1)
    newest_first = runs[::-1]
    page1 = engine.list_runs(NAMESPACE, 1, 2)
    assert (page1["namespace"], page1["total"], page1["page"], page1["size"]) == (
        NAMESPACE,
        5,
        1,
        2,
    )
    assert [r["run_id"] for r in page1["runs"]] == newest_first[:2]
    assert [r["run_id"] for r in engine.list_runs(NAMESPACE, 3, 2)["runs"]] == newest_first[4:]
    assert engine.list_runs(NAMESPACE, 4, 2)["runs"] == []
    assert [r["run_id"] for r in engine.list_runs(NAMESPACE, 1, 0)["runs"]] == newest_first
    assert [r["run_id"] for r in engine.list_runs(NAMESPACE, 2, -2)["runs"]] == newest_first[2:4]
    assert engine.list_runs("other", 1, 10) == {
        "namespace": "other",
        "total": 0,
        "page": 1,
        "size": 10,
        "runs": [],
    }
    with pytest.raises(ApiError) as info:
        engine.list_runs(NAMESPACE, 0, 10)
    assert info.value.status == 400


def test_run_item_counts_and_status() -> None:
    engine, _ = make_engine()
    _chain(engine)
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    item = engine.list_runs(NAMESPACE, 1, 10)["runs"][0]
    assert item == {
        "run_id": run_id,
        "graph_name": "g",
        "success_count": 0,
        "pending_count": 1,
        "errored_count": 0,
        "retried_count": 0,
        "total_count": 1,
        "status": "PENDING",
        "created_at": "2026-01-01T00:00:00",
    }
    engine.executed(NAMESPACE, claim_one(engine, "A")["state_id"], outputs=[{"x": "1"}])
    engine.errored(NAMESPACE, claim_one(engine, "B")["state_id"], error="e")  # retry created
    summary = engine.run_summary(run_id)
    assert summary is not None
    assert (summary["success_count"], summary["retried_count"], summary["pending_count"]) == (
        1,
        1,
        1,
    )
    assert engine.run_summary("no-such-run") is None


def test_run_without_states_is_failed() -> None:
    engine, _ = make_engine()
    _chain(engine)
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    engine.store.run_states[run_id].clear()
    engine.store.run_counts[run_id].clear()
    summary = engine.run_summary(run_id)
    assert summary is not None
    assert (summary["total_count"], summary["status"]) == (0, "FAILED")


def test_run_graph_nodes_edges_and_summary() -> None:
    engine, _ = make_engine()
    _chain(engine)
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    a = claim_one(engine, "A")
    engine.executed(NAMESPACE, a["state_id"], outputs=[{"x": "1"}, {"x": "2"}])
    graph = engine.run_graph(NAMESPACE, run_id)
    assert graph["graph_name"] == "g"
    assert graph["node_count"] == 4
    a_ids = [s["id"] for s in run_states(engine, run_id, "a")]
    b_docs = run_states(engine, run_id, "b")
    assert [r["id"] for r in graph["root_states"]] == a_ids  # fan-out copies have no parents
    assert sorted((e["source"], e["target"]) for e in graph["edges"]) == sorted(
        (d["parents"]["a"], d["id"]) for d in b_docs
    )
    assert graph["edge_count"] == 2
    assert graph["execution_summary"]["SUCCESS"] == 2
    assert graph["execution_summary"]["CREATED"] == 2
    assert len(graph["execution_summary"]) == 8
    assert graph["nodes"][0] == {
        "id": a["state_id"],
        "node_name": "A",
        "identifier": "a",
        "status": "SUCCESS",
        "error": None,
    }


def test_run_graph_of_unknown_run_is_empty() -> None:
    engine, _ = make_engine()
    graph = engine.run_graph(NAMESPACE, "nope")
    assert graph["graph_name"] == ""
    assert graph["nodes"] == graph["edges"] == graph["root_states"] == []
    assert graph["node_count"] == graph["edge_count"] == 0
    assert set(graph["execution_summary"].values()) == {0}
    assert len(graph["execution_summary"]) == 8


def test_node_details() -> None:
    engine, _ = make_engine()
    _chain(engine)
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    a = claim_one(engine, "A")
    engine.executed(NAMESPACE, a["state_id"], outputs=[{"x": "1"}])
    b_id = run_states(engine, run_id, "b")[0]["id"]
    details = engine.node_details(NAMESPACE, "g", run_id, b_id)
    assert details == {
        "id": b_id,
        "node_name": "B",
        "identifier": "b",
        "graph_name": "g",
        "run_id": run_id,
        "status": "CREATED",
        "inputs": {},
        "outputs": {},
        "error": None,
        "parents": {"a": a["state_id"]},
        "created_at": "2026-01-01T00:00:00",
        "updated_at": "2026-01-01T00:00:00",
    }
    with pytest.raises(ApiError) as info:
        engine.node_details(NAMESPACE, "g", run_id, "xyz")
    assert (info.value.status, info.value.detail) == (400, "Invalid node ID format: xyz")
    for args in [
        (NAMESPACE, "other", run_id, b_id),
        (NAMESPACE, "g", "r2", b_id),
        ("ns2", "g", run_id, b_id),
    ]:
        with pytest.raises(ApiError) as info:
            engine.node_details(*args)
        assert info.value.status == 404
        assert info.value.detail == f"Node {b_id} not found in run {args[2]} for graph {args[1]}"


def test_nodes_registration_listing_and_namespaces() -> None:
    engine, clock = make_engine()
    answer = engine.register_nodes(
        "zeta",
        runtime_name="rt1",
        nodes=[
            {"name": "N2", "inputs_schema": schema(["a"]), "outputs_schema": {}, "secrets": []},
            {"name": "N1", "inputs_schema": {}, "outputs_schema": {}, "secrets": ["k"]},
        ],
    )
    assert answer["runtime_name"] == "rt1"
    assert [n["name"] for n in answer["registered_nodes"]] == ["N2", "N1"]
    assert answer["registered_nodes"][1] == {
        "name": "N1",
        "inputs_schema": {},
        "outputs_schema": {},
        "secrets": ["k"],
    }
    listed = engine.list_nodes("zeta")
    assert listed["count"] == 2
    first = listed["nodes"][0]
    assert set(first) == REGISTERED_NODE_KEYS
    assert (first["namespace"], first["runtime_namespace"]) == ("zeta", "zeta")
    clock.advance(1)
    engine.register_nodes(
        "zeta",
        runtime_name="rt2",
        nodes=[{"name": "N2", "inputs_schema": {}, "outputs_schema": {}, "secrets": []}],
    )
    again = engine.list_nodes("zeta")["nodes"][0]
    assert (again["_id"], again["runtime_name"]) == (first["_id"], "rt2")
    assert again["updated_at"] == "2026-01-01T00:00:01"
    assert again["created_at"] == first["created_at"]
    register(engine, "X", namespace="alpha")
    assert engine.namespaces() == {"namespaces": ["alpha", "zeta"], "count": 2}
    assert engine.list_nodes("empty") == {"namespace": "empty", "count": 0, "nodes": []}

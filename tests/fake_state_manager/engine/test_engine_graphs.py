"""Graph templates and cron triggers at the engine level (contract §2.3-§2.5, §4)."""

from __future__ import annotations

import pytest

from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import (
    START,
    claim,
    make_engine,
    register,
    upsert,
    upsert_valid,
)

CRON = [{"type": "CRON", "value": {"expression": "*/5 * * * *"}}]


def _register_two(engine: Engine) -> None:
    register(engine, "Node1", inputs=[], outputs=[])
    register(engine, "Node2", inputs=[], outputs=[])


def test_upsert_answers_pending_then_verifies_at_once() -> None:
    engine, _ = make_engine()
    _register_two(engine)
    answer = upsert(engine, "g",
        nodes=[graph_node("n1", "Node1")],
        secrets={"k": "v"},
        retry_policy={"max_retries": 1},
    )
    assert answer["validation_status"] == "PENDING"
    assert answer["validation_errors"] == []
    assert answer["secrets"] == {"k": True}
    assert answer["retry_policy"]["max_retries"] == 1
    assert answer["retry_policy"]["strategy"] == "EXPONENTIAL"
    assert answer["store_config"] == {"required_keys": [], "default_values": {}}
    assert answer["triggers"] == []
    # An omitted next_nodes is served as [] (contract §4.1), never null.
    assert answer["nodes"] == [{**graph_node("n1", "Node1"), "next_nodes": []}]
    got = engine.get_graph(NAMESPACE, "g")
    assert got["validation_status"] == "VALID"
    assert got["retry_policy"]["max_retries"] == 1  # stored value (deviation from §2.4)


def test_verification_errors_make_the_graph_invalid() -> None:
    engine, _ = make_engine()
    register(engine, "Node1", inputs=["x"], outputs=[], secrets=["token"])
    upsert(engine, "g",
        nodes=[graph_node("n1", "Node1", next_nodes=["n2"]), graph_node("n2", "Ghost")],
        secrets={},
    )
    got = engine.get_graph(NAMESPACE, "g")
    assert got["validation_status"] == "INVALID"
    errors = got["validation_errors"]
    assert "Node Ghost in namespace ns does not exist." in errors
    assert "Secret token is required but not present in the graph template" in errors


def test_structural_error_is_400_and_keeps_the_old_version() -> None:
    # Contract §10 test_upsert_graph, second case.
    engine, _ = make_engine()
    _register_two(engine)
    upsert_valid(engine, "valid_graph", [graph_node("node1", "Node1")])
    with pytest.raises(ApiError) as info:
        upsert(engine, "valid_graph",
            nodes=[graph_node("node1", "Node1"), graph_node("node2", "Node2")],
            secrets={},
        )
    assert info.value.status == 400
    assert info.value.detail.startswith("Error validating graph template: ")
    assert "There should be exactly one root node in the graph but found 2" in info.value.detail
    kept = engine.get_graph(NAMESPACE, "valid_graph")
    assert [n["identifier"] for n in kept["nodes"]] == ["node1"]
    assert kept["validation_status"] == "VALID"
    upsert_valid(
        engine,
        "valid_graph",
        [graph_node("node1", "Node1", next_nodes=["node2"]), graph_node("node2", "Node2")],
    )


def test_failed_create_stores_nothing() -> None:
    engine, _ = make_engine()
    with pytest.raises(ApiError):
        upsert(engine, "g", nodes=[], secrets={})
    with pytest.raises(ApiError) as info:
        engine.get_graph(NAMESPACE, "g")
    assert (info.value.status, info.value.detail) == (
        404,
        "Graph template g not found in namespace ns",
    )
    assert engine.list_graphs(NAMESPACE) == {"namespace": NAMESPACE, "count": 0, "templates": []}


def test_update_replaces_secrets_and_keeps_id_and_created_at() -> None:
    engine, clock = make_engine()
    _register_two(engine)
    upsert_valid(engine, "g", [graph_node("n1", "Node1")], secrets={"a": "1", "b": "2"})
    (first,) = engine.list_graphs(NAMESPACE)["templates"]
    clock.advance(3)
    upsert_valid(engine, "g", [graph_node("n1", "Node1")], secrets={"b": "3"})
    (second,) = engine.list_graphs(NAMESPACE)["templates"]
    assert second["_id"] == first["_id"]
    assert second["created_at"] == first["created_at"]
    assert second["updated_at"] == "2026-01-01T00:00:03"
    assert list(second["secrets"]) == ["b"]
    assert second["secrets"]["b"] not in ("3", first["secrets"]["b"])
    assert set(second) == {
        "_id",
        "created_at",
        "updated_at",
        "name",
        "namespace",
        "nodes",
        "validation_status",
        "validation_errors",
        "secrets",
        "triggers",
        "retry_policy",
        "store_config",
    }


def test_runs_follow_the_current_template_version() -> None:
    engine, _ = make_engine()
    _register_two(engine)
    upsert_valid(engine, "g", [graph_node("n1", "Node1")])
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    upsert_valid(
        engine, "g", [graph_node("n1", "Node1", next_nodes=["n2"]), graph_node("n2", "Node2")]
    )
    (state,) = claim(engine, "Node1")
    engine.executed(NAMESPACE, state["state_id"], outputs=[{}])
    assert [s["identifier"] for s in engine.states_of_run(run_id)] == ["n1", "n2"]


def test_cron_fires_on_the_manual_clock_and_schedules_the_next() -> None:
    engine, clock = make_engine()
    _register_two(engine)
    upsert_valid(engine, "g", [graph_node("n1", "Node1")], triggers=CRON)
    assert engine.next_due_time() == START + 300
    assert engine.fire_due_triggers() == 0
    clock.advance(299)
    assert engine.fire_due_triggers() == 0
    assert engine.list_runs(NAMESPACE, 1, 10)["total"] == 0
    clock.advance(1)
    assert engine.fire_due_triggers() == 1
    assert engine.list_runs(NAMESPACE, 1, 10)["total"] == 1
    assert engine.next_due_time() == START + 600
    statuses = sorted(doc.trigger_status for doc in engine.store.cron.values())
    assert statuses == ["PENDING", "TRIGGERED"]


def test_cron_catches_up_missed_occurrences_in_one_pass() -> None:
    engine, clock = make_engine()
    _register_two(engine)
    upsert_valid(engine, "g", [graph_node("n1", "Node1")], triggers=CRON)
    clock.advance(3 * 300 + 10)
    assert engine.fire_due_triggers() == 3
    assert engine.list_runs(NAMESPACE, 1, 10)["total"] == 3
    assert engine.next_due_time() == START + 1200


def test_cron_trigger_fails_when_store_keys_are_required() -> None:
    engine, clock = make_engine()
    _register_two(engine)
    upsert_valid(
        engine,
        "g",
        [graph_node("n1", "Node1")],
        triggers=CRON,
        store_config={"required_keys": ["k"]},
    )
    clock.advance(300)
    assert engine.fire_due_triggers() == 1
    assert engine.list_runs(NAMESPACE, 1, 10)["total"] == 0
    failed = [d for d in engine.store.cron.values() if d.trigger_status == "FAILED"]
    assert len(failed) == 1
    assert failed[0].expires_at == START + 300 + 720 * 3600


def test_reupsert_replaces_pending_cron_docs() -> None:
    engine, clock = make_engine()
    _register_two(engine)
    upsert_valid(engine, "g", [graph_node("n1", "Node1")], triggers=CRON)
    upsert_valid(
        engine,
        "g",
        [graph_node("n1", "Node1")],
        triggers=[{"type": "CRON", "value": {"expression": "0 * * * *"}}],
    )
    assert engine.next_due_time() == START + 3600
    assert [d.expression for d in engine.store.cron.values()] == ["0 * * * *"]
    upsert_valid(engine, "g", [graph_node("n1", "Node1")])
    assert engine.next_due_time() is None
    clock.advance(7200)
    assert engine.fire_due_triggers() == 0


def test_finished_cron_docs_expire_after_retention() -> None:
    engine, clock = make_engine()
    engine.trigger_retention_hours = 1.0
    _register_two(engine)
    upsert_valid(
        engine,
        "g",
        [graph_node("n1", "Node1")],
        triggers=[{"type": "CRON", "value": {"expression": "0 0 * * *"}}],
    )
    clock.advance(86400)
    assert engine.fire_due_triggers() == 1
    clock.advance(3600)
    engine.fire_due_triggers()
    assert [d.trigger_status for d in engine.store.cron.values()] == ["PENDING"]


def test_cron_that_never_fires_again_stops_without_raising(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 7-field croniter expression (seconds, year): fires once, on 2027-01-01, then never again.
    engine, clock = make_engine()
    _register_two(engine)
    once = [{"type": "CRON", "value": {"expression": "0 0 1 1 * 0 2027"}}]
    upsert_valid(engine, "g", [graph_node("n1", "Node1")], triggers=once)
    clock.advance(365 * 86400)
    with caplog.at_level("WARNING", logger="fake_state_manager"):
        assert engine.fire_due_triggers() == 1
    assert engine.list_runs(NAMESPACE, 1, 10)["total"] == 1
    assert [d.trigger_status for d in engine.store.cron.values()] == ["TRIGGERED"]
    assert engine.next_due_time() is None
    assert "will not fire again" in caplog.text
    clock.advance(365 * 86400)
    assert engine.fire_due_triggers() == 0

"""Unites and graph shapes at the engine level (contract §3.5)."""

from __future__ import annotations

from typing import Any

import pytest

from fake_state_manager._engine.engine import Engine
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import (
    claim,
    claim_one,
    fan_in_graph,
    make_engine,
    register,
    run_states,
    statuses,
    upsert_valid,
)

NO_RETRY = {"max_retries": 0}


def _fan_in(
    engine: Engine,
    target: str,
    strategy: str = "ALL_SUCCESS",
    retry_policy: dict[str, Any] = NO_RETRY,
) -> str:
    """r -> s (fans out) -> w -> m with ``unites: target``; returns a run id."""
    fan_in_graph(engine, target, strategy, retry_policy)
    run_id = str(engine.trigger(NAMESPACE, "g")["run_id"])
    engine.executed(NAMESPACE, claim_one(engine, "R")["state_id"], outputs=[{"v": "rv"}])
    engine.executed(
        NAMESPACE, claim_one(engine, "S")["state_id"], outputs=[{"item": str(i)} for i in range(3)]
    )
    return run_id


def _finish(engine: Engine, states: list[dict[str, Any]], how: list[str]) -> None:
    for state, outcome in zip(states, how, strict=True):
        if outcome == "ok":
            engine.executed(NAMESPACE, state["state_id"], outputs=[{"done": "y"}])
        elif outcome == "error":
            engine.errored(NAMESPACE, state["state_id"], error="bad")
        else:
            engine.prune(NAMESPACE, state["state_id"], data={})


def test_fan_in_through_an_ancestor_creates_one_unite_state_after_the_last_branch() -> None:
    engine, _ = make_engine()
    run_id = _fan_in(engine, "r")
    workers = claim(engine, "W")
    assert len(workers) == 3
    _finish(engine, workers[:2], ["ok", "ok"])
    assert run_states(engine, run_id, "m") == []  # one branch still QUEUED
    _finish(engine, workers[2:], ["ok"])
    (merger,) = run_states(engine, run_id, "m")
    root = run_states(engine, run_id, "r")[0]
    assert merger["status"] == "CREATED"
    assert merger["parents"] == {"r": root["id"]}
    assert merger["inputs"] == {"v": "rv"}
    assert merger["does_unites"] is True
    assert len(merger["state_fingerprint"]) == 64
    assert statuses(engine, run_id, "w") == ["SUCCESS"] * 3
    engine.executed(NAMESPACE, claim_one(engine, "M")["state_id"], outputs=[])
    assert engine.run_summary(run_id)["status"] == "SUCCESS"  # type: ignore[index]
    engine.check_invariants()


def test_unite_on_the_fanning_node_fires_once_per_item() -> None:
    engine, _ = make_engine()
    register(engine, "R", inputs=[], outputs=["v"])
    register(engine, "S", inputs=[], outputs=["item"])
    register(engine, "W", inputs=[], outputs=[])
    register(engine, "M", inputs=["i"], outputs=[])
    upsert_valid(
        engine,
        "g",
        [
            graph_node("r", next_nodes=["s"]),
            graph_node("s", next_nodes=["w"]),
            graph_node("w", next_nodes=["m"]),
            graph_node("m", inputs={"i": "${{ s.outputs.item }}"}, unites={"identifier": "s"}),
        ],
    )
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    engine.executed(NAMESPACE, claim_one(engine, "R")["state_id"], outputs=[{"v": "x"}])
    engine.executed(
        NAMESPACE, claim_one(engine, "S")["state_id"], outputs=[{"item": "1"}, {"item": "2"}]
    )
    _finish(engine, claim(engine, "W"), ["ok", "ok"])
    mergers = run_states(engine, run_id, "m")
    assert sorted(m["inputs"]["i"] for m in mergers) == ["1", "2"]
    s_ids = {s["id"] for s in run_states(engine, run_id, "s")}
    assert {m["parents"]["s"] for m in mergers} == s_ids


@pytest.mark.parametrize(
    ("strategy", "outcomes", "created"),
    [
        pytest.param("ALL_SUCCESS", ["error", "ok", "ok"], False, id="all-success-errored"),
        pytest.param("ALL_SUCCESS", ["prune", "ok", "ok"], False, id="all-success-pruned"),
        pytest.param("ALL_DONE", ["error", "ok", "ok"], True, id="all-done-errored-first"),
        pytest.param("ALL_DONE", ["prune", "ok", "ok"], True, id="all-done-pruned-first"),
        pytest.param("ALL_DONE", ["ok", "ok", "error"], False, id="all-done-errored-last"),
        pytest.param("ALL_DONE", ["ok", "ok", "prune"], False, id="all-done-pruned-last"),
    ],
)
def test_unite_strategies(strategy: str, outcomes: list[str], created: bool) -> None:
    engine, _ = make_engine()
    run_id = _fan_in(engine, "r", strategy)
    _finish(engine, claim(engine, "W"), outcomes)
    assert len(run_states(engine, run_id, "m")) == (1 if created else 0)
    engine.check_invariants()


def test_retried_branch_does_not_block_all_success() -> None:
    engine, clock = make_engine()
    policy = {"max_retries": 1, "strategy": "FIXED", "backoff_factor": 1000}
    run_id = _fan_in(engine, "r", retry_policy=policy)
    first, *others = claim(engine, "W")
    engine.errored(NAMESPACE, first["state_id"], error="flaky")
    _finish(engine, others, ["ok", "ok"])
    assert run_states(engine, run_id, "m") == []  # the retry is still CREATED
    assert statuses(engine, run_id, "w") == ["RETRY_CREATED", "SUCCESS", "SUCCESS", "CREATED"]
    clock.advance(1)
    _finish(engine, [claim_one(engine, "W")], ["ok"])
    assert len(run_states(engine, run_id, "m")) == 1
    engine.check_invariants()


def test_unite_target_not_an_ancestor_is_next_created_error() -> None:
    engine, _ = make_engine()
    register(engine, "A", inputs=[], outputs=[])
    register(engine, "M", inputs=[], outputs=[])
    upsert_valid(
        engine,
        "g",
        [graph_node("a", next_nodes=["m"]), graph_node("m", unites={"identifier": "a"})],
    )
    run_id = engine.trigger(NAMESPACE, "g")["run_id"]
    engine.executed(NAMESPACE, claim_one(engine, "A")["state_id"], outputs=[{}])
    (a_doc,) = run_states(engine, run_id, "a")
    assert a_doc["status"] == "NEXT_CREATED_ERROR"
    assert a_doc["error"] == "Unit identifier not found in parents: a"
    engine.check_invariants()


def _diamond(engine: Engine, d_inputs: dict[str, str], d_fields: list[str]) -> str:
    register(engine, "A", inputs=[], outputs=["x"])
    register(engine, "B", inputs=[], outputs=["x"])
    register(engine, "C", inputs=[], outputs=["x"])
    register(engine, "D", inputs=d_fields, outputs=[])
    upsert_valid(
        engine,
        "g",
        [
            graph_node("a", next_nodes=["b", "c"]),
            graph_node("b", next_nodes=["d"]),
            graph_node("c", next_nodes=["d"]),
            graph_node("d", inputs=d_inputs),
        ],
    )
    run_id = str(engine.trigger(NAMESPACE, "g")["run_id"])
    engine.executed(NAMESPACE, claim_one(engine, "A")["state_id"], outputs=[{"x": "a"}])
    engine.executed(NAMESPACE, claim_one(engine, "B")["state_id"], outputs=[{"x": "b"}])
    engine.executed(NAMESPACE, claim_one(engine, "C")["state_id"], outputs=[{"x": "c"}])
    return run_id


def test_diamond_without_unites_creates_d_twice() -> None:
    engine, _ = make_engine()
    run_id = _diamond(engine, {"v": "${{ a.outputs.x }}"}, ["v"])
    d_docs = run_states(engine, run_id, "d")
    assert len(d_docs) == 2
    assert sorted(tuple(d["parents"]) for d in d_docs) == [("a", "b"), ("a", "c")]
    assert all(d["inputs"] == {"v": "a"} for d in d_docs)


def test_diamond_input_referencing_both_branches_is_next_created_error() -> None:
    engine, _ = make_engine()
    run_id = _diamond(engine, {"v": "${{ b.outputs.x }}${{ c.outputs.x }}"}, ["v"])
    assert run_states(engine, run_id, "d") == []
    (b_doc,) = run_states(engine, run_id, "b")
    (c_doc,) = run_states(engine, run_id, "c")
    assert b_doc["status"] == c_doc["status"] == "NEXT_CREATED_ERROR"
    # str(KeyError(...)) keeps the quotes (§3.5 step 5).
    assert b_doc["error"] == "\"Identifier 'c' not found in parents for template 'd'\""
    assert c_doc["error"] == "\"Identifier 'b' not found in parents for template 'd'\""

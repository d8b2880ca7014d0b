"""Shared helpers for the engine tests: a seeded engine on a ManualClock and graph builders."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, get_args

from exo_ref import StateStatus
from exo_ref._clock import ManualClock
from fake_state_manager._engine.engine import Engine
from fake_state_manager._http.requests import UpsertGraphTemplateRequest
from tests.builders import NAMESPACE, graph_node

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, ManualClock's default start
START_MS = int(START * 1000)

#: §7.2 execution_summary keys, in the contract's order (§3.2 statuses), which the SDK's
#: ``StateStatus`` type states for the whole tree.
STATUS_ORDER: tuple[str, ...] = get_args(StateStatus)

#: The keys of a registered node as GET ``/nodes/`` lists it (§2.2): ``_id``, not ``id``.
REGISTERED_NODE_KEYS = {
    "_id",
    "created_at",
    "updated_at",
    "name",
    "namespace",
    "runtime_name",
    "runtime_namespace",
    "inputs_schema",
    "outputs_schema",
    "secrets",
}


def make_engine(seed: int = 0) -> tuple[Engine, ManualClock]:
    """An engine with a ManualClock at :data:`START` and a seeded random source."""
    clock = ManualClock(START)
    return Engine(clock=clock, rng=random.Random(seed)), clock


def schema(fields: Sequence[str], title: str = "Model") -> dict[str, Any]:
    """A JSON Schema like pydantic's ``model_json_schema()`` for ``str`` fields."""
    return {
        "properties": {f: {"title": f.title(), "type": "string"} for f in fields},
        "required": list(fields),
        "title": title,
        "type": "object",
    }


def register(
    engine: Engine,
    name: str,
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    secrets: Sequence[str] = (),
    namespace: str = NAMESPACE,
) -> None:
    """Register one node class the way the SDK does (§8.3)."""
    engine.register_nodes(
        namespace,
        runtime_name="rt",
        nodes=[
            {
                "name": name,
                "inputs_schema": schema(inputs, "Inputs"),
                "outputs_schema": schema(outputs, "Outputs"),
                "secrets": list(secrets),
            }
        ],
    )


def upsert(
    engine: Engine, graph: str, *, nodes: list[dict[str, Any]], **body: Any
) -> dict[str, Any]:
    """Upsert as the HTTP layer does: the JSON body validated once into the graph models."""
    request = UpsertGraphTemplateRequest.model_validate({"secrets": {}, "nodes": nodes, **body})
    return engine.upsert_graph(
        NAMESPACE,
        graph,
        nodes=request.nodes,
        secrets=request.secrets,
        retry_policy=request.retry_policy,
        store_config=request.store_config,
        triggers=request.triggers,
    )


def upsert_valid(
    engine: Engine, graph: str, nodes: list[dict[str, Any]], **body: Any
) -> dict[str, Any]:
    """Upsert a graph and assert it verified VALID; returns the GET body."""
    upsert(engine, graph, nodes=nodes, **body)
    body = engine.get_graph(NAMESPACE, graph)
    assert body["validation_status"] == "VALID", body["validation_errors"]
    return body


def claim(engine: Engine, *names: str, batch: int = 100) -> list[dict[str, Any]]:
    """Enqueue every claimable state of these node names."""
    return list(engine.enqueue(NAMESPACE, nodes=list(names), batch_size=batch)["states"])


def claim_one(engine: Engine, name: str) -> dict[str, Any]:
    """Claim exactly one state of ``name`` (fails if there is not exactly one)."""
    states = claim(engine, name)
    assert len(states) == 1, states
    return states[0]


def run_states(engine: Engine, run_id: str, identifier: str | None = None) -> list[dict[str, Any]]:
    """States of a run, optionally only those of one identifier."""
    states = engine.states_of_run(run_id)
    return [s for s in states if identifier is None or s["identifier"] == identifier]


def statuses(engine: Engine, run_id: str, identifier: str) -> list[str]:
    """Statuses of one identifier's states in a run, in creation order."""
    return [s["status"] for s in run_states(engine, run_id, identifier)]


def fan_in_graph(
    engine: Engine,
    target: str = "r",
    strategy: str = "ALL_SUCCESS",
    retry_policy: dict[str, Any] | None = None,
) -> None:
    """Register R, S, W, M and upsert r -> s (fans out) -> w -> m with ``unites: target``."""
    register(engine, "R", inputs=[], outputs=["v"])
    register(engine, "S", inputs=[], outputs=["item"])
    register(engine, "W", inputs=["item"], outputs=["done"])
    register(engine, "M", inputs=["v"], outputs=[])
    upsert_valid(
        engine,
        "g",
        [
            graph_node("r", next_nodes=["s"]),
            graph_node("s", next_nodes=["w"]),
            graph_node("w", inputs={"item": "${{ s.outputs.item }}"}, next_nodes=["m"]),
            graph_node(
                "m",
                inputs={"v": "${{ r.outputs.v }}"},
                unites={"identifier": target, "strategy": strategy},
            ),
        ],
        retry_policy=retry_policy or {},
    )

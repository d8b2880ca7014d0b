"""What the suite sends a state manager to seed a scenario, the same in both modes.

Before a runtime starts, the injected harness (:mod:`conformance._harness`, generated node
shapes, async client) and the black-box one (:mod:`conformance._blackbox`, the catalogue, sync
client) register the nodes under a name of their own, upsert one single-node graph per node and
trigger runs. The bodies are built here so that both seed a server exactly alike; only the
clients and the waiting differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import httpx

__all__ = ["NodeFields", "graph_body", "registration_body", "trigger_body", "unexpected"]


class NodeFields(Protocol):
    """A node's name and field names: a generated shape or a catalogue entry."""

    @property
    def name(self) -> str: ...

    @property
    def inputs(self) -> tuple[str, ...]: ...

    @property
    def outputs(self) -> tuple[str, ...]: ...

    @property
    def secrets(self) -> tuple[str, ...]: ...


def _schema(fields: tuple[str, ...]) -> dict[str, Any]:
    # Verification only looks at field names and their string type (contract §4.4): this is
    # what a pydantic model of string fields produces, without needing one.
    return {
        "type": "object",
        "title": "Model",
        "properties": {f: {"title": f, "type": "string"} for f in fields},
        "required": list(fields),
    }


def registration_body(runtime_name: str, nodes: Iterable[NodeFields]) -> dict[str, Any]:
    """``PUT .../nodes/`` (contract §2.1) registering ``nodes`` as ``runtime_name``."""
    return {
        "runtime_name": runtime_name,
        "nodes": [
            {
                "name": n.name,
                "inputs_schema": _schema(n.inputs),
                "outputs_schema": _schema(n.outputs),
                "secrets": list(n.secrets),
            }
            for n in nodes
        ],
    }


def graph_body(
    namespace: str,
    node: NodeFields,
    *,
    secrets: Mapping[str, str],
    retry_policy: Mapping[str, Any],
) -> dict[str, Any]:
    """``PUT .../graph/{name}`` (contract §4.4): ``node`` alone, every input empty."""
    return {
        "secrets": dict(secrets),
        "nodes": [
            {
                "node_name": node.name,
                "namespace": namespace,
                "identifier": "only",
                "inputs": {f: "" for f in node.inputs},
                "next_nodes": None,
                "unites": None,
            }
        ],
        "retry_policy": dict(retry_policy),
    }


def trigger_body(inputs: Mapping[str, str]) -> dict[str, Any]:
    """``POST .../graph/{name}/trigger`` (contract §2.6): one run at once, an empty store."""
    return {"inputs": dict(inputs), "store": {}, "start_delay": 0}


def unexpected(reply: httpx.Response, status: int) -> str | None:
    """None when ``reply`` has ``status``; else what it was instead, for the harness's error."""
    if reply.status_code == status:
        return None
    return f"HTTP {reply.status_code} {reply.text[:300]}"

"""Registered nodes (contract §2.1, §2.2, §2.17): upsert by (namespace, name), list, namespaces."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fake_state_manager._engine.templates import plain
from fake_state_manager._json import JsonDict
from fake_state_manager._store.documents import iso_utc
from fake_state_manager._store.store import Store

__all__ = ["list_nodes", "namespaces", "register_nodes"]



def register_nodes(
    store: Store,
    namespace: str,
    runtime_name: str,
    nodes: Sequence[Mapping[str, Any]],
    now: float,
) -> JsonDict:
    """§2.1: the last registrant wins; the nodes are echoed back in request order."""
    registry = store.nodes.setdefault(namespace, {})
    echoed = []
    for node in nodes:
        item = {
            "name": node["name"],
            "inputs_schema": plain(node["inputs_schema"]),
            "outputs_schema": plain(node["outputs_schema"]),
            "secrets": list(node["secrets"]),
        }
        existing = registry.get(item["name"])
        registry[item["name"]] = {
            "_id": existing["_id"] if existing else store.new_id(),
            "created_at": existing["created_at"] if existing else now,
            "updated_at": now,
            "name": item["name"],
            "namespace": namespace,
            "runtime_name": runtime_name,
            "runtime_namespace": namespace,
            "inputs_schema": item["inputs_schema"],
            "outputs_schema": item["outputs_schema"],
            "secrets": item["secrets"],
        }
        store.note_node(namespace, item["name"])
        echoed.append(plain(item))
    return {"runtime_name": runtime_name, "registered_nodes": echoed}


def list_nodes(store: Store, namespace: str) -> JsonDict:
    """§2.2: the namespace's registered node documents, with ``_id`` keys."""
    nodes = [
        {
            **plain(doc),
            "created_at": iso_utc(doc["created_at"]),
            "updated_at": iso_utc(doc["updated_at"]),
        }
        for doc in store.nodes.get(namespace, {}).values()
    ]
    return {"namespace": namespace, "count": len(nodes), "nodes": nodes}


def namespaces(store: Store) -> JsonDict:
    """§2.17: distinct non-empty namespaces of registered nodes, sorted."""
    names = sorted(ns for ns, nodes in store.nodes.items() if ns and nodes)
    return {"namespaces": names, "count": len(names)}

"""The one vocabulary of builders shared by every test package (graph bodies, contract §4.1).

``NAMESPACE`` is a namespace name; the HTTP tests' path prefix is ``http_support.PREFIX``.
``graph_node`` builds a graph template node; ``http_support.registration`` a node registration.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NAMESPACE", "graph_node"]

NAMESPACE = "ns"


def graph_node(
    identifier: str,
    node_name: str | None = None,
    inputs: dict[str, Any] | None = None,
    next_nodes: list[str] | None = None,
    unites: dict[str, str] | None = None,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """A NodeTemplate dict (§4.1); the node name defaults to the identifier capitalised."""
    return {
        "node_name": node_name or identifier.capitalize(),
        "namespace": namespace,
        "identifier": identifier,
        "inputs": inputs or {},
        "next_nodes": next_nodes,
        "unites": unites,
    }

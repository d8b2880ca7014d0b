"""Response shapes of the state-manager read calls (contract §2.6, §2.14-2.16, §7).

They are plain JSON dicts at run time (what the server sent, unchanged), typed so that a reader
and mypy know the fields. Used by :class:`~exo_ref.StateManager`.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "NodeDetails",
    "RunGraph",
    "RunGraphEdge",
    "RunGraphNode",
    "RunSummary",
    "RunsPage",
    "TriggerResponse",
]


class TriggerResponse(TypedDict):
    """``POST .../trigger`` (contract §2.6)."""

    status: str
    run_id: str


class RunSummary(TypedDict):
    """One item of the runs list (contract §7.1)."""

    run_id: str
    graph_name: str
    success_count: int
    pending_count: int
    errored_count: int
    retried_count: int
    total_count: int
    status: str
    created_at: str


class RunsPage(TypedDict):
    """``GET .../runs/{page}/{size}`` (contract §2.14)."""

    namespace: str
    total: int
    page: int
    size: int
    runs: list[RunSummary]


class RunGraphNode(TypedDict):
    """A state in a run graph (contract §2.15)."""

    id: str
    node_name: str
    identifier: str
    status: str
    error: str | None


class RunGraphEdge(TypedDict):
    source: str
    target: str


class RunGraph(TypedDict):
    """``GET .../states/run/{run_id}/graph`` (contract §2.15, §7.2)."""

    root_states: list[RunGraphNode]
    graph_name: str
    nodes: list[RunGraphNode]
    edges: list[RunGraphEdge]
    node_count: int
    edge_count: int
    execution_summary: dict[str, int]


class NodeDetails(TypedDict):
    """``GET .../graph/{g}/run/{run_id}/node/{node_id}`` (contract §2.16)."""

    id: str
    node_name: str
    identifier: str
    graph_name: str
    run_id: str
    status: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    error: str | None
    parents: dict[str, str]
    created_at: str
    updated_at: str

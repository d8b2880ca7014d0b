"""Pydantic models of every ``/v0`` response body (contract §2), for the OpenAPI document.

The engine builds the response dicts itself; these models only describe them in
``/openapi.json`` (:mod:`.openapi`, via the ``response`` of each ``routes.Endpoint``).
``model_json_schema()`` works on every model listed in ``__all__``.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from exo_ref import RetryPolicyModel
from fake_state_manager._graph.models import (
    GraphTemplateValidationStatus,
    NodeTemplate,
    StoreConfig,
    Trigger,
)
from fake_state_manager._store.documents import StateStatusEnum

__all__ = [
    "EnqueueResponse",
    "EnqueuedState",
    "ErrorResponse",
    "ErroredResponse",
    "ExecutedResponse",
    "GraphEdge",
    "GraphNode",
    "GraphTemplateDocument",
    "HealthResponse",
    "ListGraphTemplatesResponse",
    "ListNodesResponse",
    "ManualRetryResponse",
    "NamespacesResponse",
    "NodeRunDetailsResponse",
    "PruneResponse",
    "ReEnqueueAfterResponse",
    "RegisterNodesResponse",
    "RegisteredNodeDocument",
    "RunGraphResponse",
    "RunListItem",
    "RunStatusEnum",
    "RunsResponse",
    "SecretsResponse",
    "TriggerGraphResponse",
    "UpsertGraphTemplateResponse",
]


class RunStatusEnum(str, Enum):  # noqa: UP042 - str(member) as upstream
    """Derived run status (contract §3.6, §7.1)."""

    SUCCESS = "SUCCESS"
    PENDING = "PENDING"
    FAILED = "FAILED"


class _Document(BaseModel):
    """A stored document as upstream lists it: the id under the key ``_id`` (contract §2.2)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str = Field(..., alias="_id", description="Document id (24 hex digits)")
    created_at: datetime
    updated_at: datetime


class HealthResponse(BaseModel):
    """GET ``/health`` (contract §2 #1)."""

    message: str


class ErrorResponse(BaseModel):
    """``{"detail": ...}`` of every HTTPException-style error (contract §1.3)."""

    detail: str


class RegisteredNodeOut(BaseModel):
    """A registered node as echoed by the registration (contract §2.1)."""

    name: str
    inputs_schema: dict[str, Any]
    outputs_schema: dict[str, Any]
    secrets: list[str]


class RegisterNodesResponse(BaseModel):
    """Answer of PUT ``/nodes/`` (contract §2.1)."""

    runtime_name: str
    registered_nodes: list[RegisteredNodeOut]


class RegisteredNodeDocument(_Document, RegisteredNodeOut):
    """A registered node as listed by GET ``/nodes/`` (contract §2.2): the echoed fields and
    where it lives."""

    namespace: str
    runtime_name: str
    runtime_namespace: str


class ListNodesResponse(BaseModel):
    """GET ``/nodes/`` (contract §2.2)."""

    namespace: str
    count: int
    nodes: list[RegisteredNodeDocument]


class UpsertGraphTemplateResponse(BaseModel):
    """PUT and GET ``/graph/{graph_name}`` (contract §2.3, §2.4); secrets are names only."""

    nodes: list[NodeTemplate]
    secrets: dict[str, bool]
    retry_policy: RetryPolicyModel
    store_config: StoreConfig
    triggers: list[Trigger]
    created_at: datetime
    updated_at: datetime
    validation_status: GraphTemplateValidationStatus
    validation_errors: list[str]


class GraphTemplateDocument(_Document):
    """A stored graph template as listed by GET ``/graphs/`` (contract §2.5)."""

    name: str
    namespace: str
    nodes: list[NodeTemplate]
    validation_status: GraphTemplateValidationStatus
    validation_errors: list[str]
    secrets: dict[str, str] = Field(..., description="Secret name -> opaque encrypted value")
    triggers: list[Trigger]
    retry_policy: RetryPolicyModel
    store_config: StoreConfig


class ListGraphTemplatesResponse(BaseModel):
    """GET ``/graphs/`` (contract §2.5)."""

    namespace: str
    count: int
    templates: list[GraphTemplateDocument]


class TriggerGraphResponse(BaseModel):
    """Answer of a trigger (contract §2.6): status ``CREATED``."""

    status: StateStatusEnum
    run_id: str


class EnqueuedState(BaseModel):
    """One claimed state (contract §2.7)."""

    state_id: str
    node_name: str
    identifier: str
    inputs: dict[str, Any]
    created_at: datetime


class EnqueueResponse(BaseModel):
    """Answer of enqueue (contract §2.7): status is always ``QUEUED``."""

    count: int
    namespace: str
    status: StateStatusEnum
    states: list[EnqueuedState]


class ExecutedResponse(BaseModel):
    """Answer of executed (contract §2.8)."""

    status: StateStatusEnum


class ErroredResponse(BaseModel):
    """Answer of errored (contract §2.9): status is always ``ERRORED``."""

    status: StateStatusEnum
    retry_created: bool


class PruneResponse(BaseModel):
    """Answer of prune (contract §2.10)."""

    enqueue_after: int
    status: StateStatusEnum


class ReEnqueueAfterResponse(BaseModel):
    """Answer of re-enqueue-after (contract §2.11): the new ``enqueue_after`` in epoch ms."""

    enqueue_after: int
    status: StateStatusEnum


class ManualRetryResponse(BaseModel):
    """Answer of manual retry (contract §2.12): the new state's id."""

    id: str
    status: StateStatusEnum


class SecretsResponse(BaseModel):
    """GET ``/state/{id}/secrets`` (contract §2.13): plaintext values."""

    secrets: dict[str, str]


class RunListItem(BaseModel):
    """One run with its state counts (contract §7.1)."""

    run_id: str
    graph_name: str
    success_count: int
    pending_count: int
    errored_count: int
    retried_count: int
    total_count: int
    status: RunStatusEnum
    created_at: datetime


class RunsResponse(BaseModel):
    """GET ``/runs/{page}/{size}`` (contract §2.14, §7.1)."""

    namespace: str
    total: int
    page: int
    size: int
    runs: list[RunListItem]


class GraphNode(BaseModel):
    """One state in a run graph (contract §2.15)."""

    id: str
    node_name: str
    identifier: str
    status: StateStatusEnum
    error: str | None


class GraphEdge(BaseModel):
    """A parent -> child edge between states (contract §7.2)."""

    source: str
    target: str


class RunGraphResponse(BaseModel):
    """GET ``/states/run/{run_id}/graph`` (contract §2.15, §7.2)."""

    root_states: list[GraphNode]
    graph_name: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    node_count: int
    edge_count: int
    execution_summary: dict[str, int]


class NodeRunDetailsResponse(BaseModel):
    """GET ``/graph/{g}/run/{run_id}/node/{node_id}`` (contract §2.16)."""

    id: str
    node_name: str
    identifier: str
    graph_name: str
    run_id: str
    status: StateStatusEnum
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    error: str | None
    parents: dict[str, str]
    created_at: str
    updated_at: str


class NamespacesResponse(BaseModel):
    """GET ``/v0/namespaces`` (contract §2.17)."""

    namespaces: list[str]
    count: int

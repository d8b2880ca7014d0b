"""Pydantic models of every ``/v0`` response body (contract §2), for the OpenAPI document.

The engine builds the response dicts itself; these models only describe them in
``/openapi.json`` (:mod:`.openapi`, via the ``response`` of each ``routes.Endpoint``, and
``openapi.ERROR_MODELS`` for the error bodies of contract §1.3). Datetimes are
:data:`IsoDateTime` strings (ISO-8601 without offset, contract §1.1), not ``datetime``: a
``format: date-time`` would promise an offset the values do not carry. Counts and totals are
``NonNegativeInt``: the schema's ``minimum: 0`` lets the response-model test and schemathesis
catch a counter that went below zero (a state counted out twice).
``model_json_schema()`` works on every model listed in ``__all__``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

from exo_ref import RetryPolicyModel, RunStatus, StateStatus, ValidationStatus
from fake_state_manager._graph.models import (
    NodeTemplate,
    StoreConfig,
    Trigger,
)
from fake_state_manager._http.requests import NodeRegistration

__all__ = [
    "ISO_DATETIME_PATTERN",
    "EnqueueResponse",
    "EnqueuedState",
    "ErrorResponse",
    "ErroredResponse",
    "ExecutedResponse",
    "GraphEdge",
    "GraphNode",
    "GraphTemplateDocument",
    "HealthResponse",
    "InternalErrorResponse",
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
    "RunsResponse",
    "SecretsResponse",
    "TriggerGraphResponse",
    "UpsertGraphTemplateResponse",
    "ValidationErrorDetail",
    "ValidationErrorResponse",
]

#: What every ``created_at`` / ``updated_at`` looks like (contract §1.1): ISO-8601 without an
#: offset, with microseconds unless they are zero. Not ``format: date-time`` (RFC 3339 requires
#: an offset), so the document says what the values are.
ISO_DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?$"

#: A datetime as the answers carry it: a string, e.g. ``2026-01-01T00:00:00.123000`` (UTC).
IsoDateTime = Annotated[
    str,
    Field(
        pattern=ISO_DATETIME_PATTERN,
        description="ISO-8601 date and time without offset (UTC in the fake, naive local time "
        "upstream), e.g. 2026-01-01T00:00:00.123000",
        examples=["2026-01-01T00:00:00.123000"],
    ),
]


class _Document(BaseModel):
    """A stored document as upstream lists it: the id under the key ``_id`` (contract §2.2)."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str = Field(..., alias="_id", description="Document id (24 hex digits)")
    created_at: IsoDateTime
    updated_at: IsoDateTime


class HealthResponse(BaseModel):
    """GET ``/health`` (contract §2 #1)."""

    message: Literal["OK"]


class ErrorResponse(BaseModel):
    """``{"detail": ...}`` of every HTTPException-style error (contract §1.3): 400, 401, 404,
    405, 409, 413."""

    model_config = ConfigDict(extra="forbid")

    detail: str


class ValidationErrorDetail(BaseModel):
    """One item of a 422 ``detail``: FastAPI's ``ValidationError`` shape (contract §1.3)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(..., description="Error type, e.g. missing, json_invalid, int_parsing")
    loc: list[str | int] = Field(..., description='Where: "body" or "path", then the keys')
    msg: str
    input: Any = Field(..., description="The offending value (null when it is missing)")
    ctx: dict[str, Any] = Field(
        default_factory=dict, description="Error context (present for some error types)"
    )


class ValidationErrorResponse(BaseModel):
    """A 422 answer (contract §1.2, §1.3): FastAPI's ``HTTPValidationError`` shape."""

    model_config = ConfigDict(extra="forbid")

    detail: list[ValidationErrorDetail]


class InternalErrorResponse(BaseModel):
    """The 500 of ``UnhandledExceptionsMiddleware`` (contract §1.3); for the fake, a bug."""

    model_config = ConfigDict(extra="forbid")

    success: Literal[False]
    detail: str


class RegisterNodesResponse(BaseModel):
    """Answer of PUT ``/nodes/`` (contract §2.1)."""

    runtime_name: str
    registered_nodes: list[NodeRegistration]  # echoed as received, without namespace


class RegisteredNodeDocument(_Document, NodeRegistration):
    """A registered node as listed by GET ``/nodes/`` (contract §2.2): the echoed fields and
    where it lives."""

    namespace: str
    runtime_name: str
    runtime_namespace: str


class ListNodesResponse(BaseModel):
    """GET ``/nodes/`` (contract §2.2)."""

    namespace: str
    count: NonNegativeInt
    nodes: list[RegisteredNodeDocument]


class UpsertGraphTemplateResponse(BaseModel):
    """PUT and GET ``/graph/{graph_name}`` (contract §2.3, §2.4); secrets are names only."""

    nodes: list[NodeTemplate]
    secrets: dict[str, bool]
    retry_policy: RetryPolicyModel
    store_config: StoreConfig
    triggers: list[Trigger]
    created_at: IsoDateTime
    updated_at: IsoDateTime
    validation_status: ValidationStatus
    validation_errors: list[str]


class GraphTemplateDocument(_Document):
    """A stored graph template as listed by GET ``/graphs/`` (contract §2.5)."""

    name: str
    namespace: str
    nodes: list[NodeTemplate]
    validation_status: ValidationStatus
    validation_errors: list[str]
    secrets: dict[str, str] = Field(..., description="Secret name -> opaque encrypted value")
    triggers: list[Trigger]
    retry_policy: RetryPolicyModel
    store_config: StoreConfig


class ListGraphTemplatesResponse(BaseModel):
    """GET ``/graphs/`` (contract §2.5)."""

    namespace: str
    count: NonNegativeInt
    templates: list[GraphTemplateDocument]


class TriggerGraphResponse(BaseModel):
    """Answer of a trigger (contract §2.6): status ``CREATED``."""

    status: StateStatus
    run_id: str


class EnqueuedState(BaseModel):
    """One claimed state (contract §2.7)."""

    state_id: str
    node_name: str
    identifier: str
    inputs: dict[str, Any]
    created_at: IsoDateTime


class EnqueueResponse(BaseModel):
    """Answer of enqueue (contract §2.7): status is always ``QUEUED``."""

    count: NonNegativeInt
    namespace: str
    status: StateStatus
    states: list[EnqueuedState]


class ExecutedResponse(BaseModel):
    """Answer of executed (contract §2.8)."""

    status: StateStatus


class ErroredResponse(BaseModel):
    """Answer of errored (contract §2.9): status is always ``ERRORED``."""

    status: StateStatus
    retry_created: bool


class PruneResponse(BaseModel):
    """Answer of prune (contract §2.10)."""

    enqueue_after: int
    status: StateStatus


class ReEnqueueAfterResponse(BaseModel):
    """Answer of re-enqueue-after (contract §2.11): the new ``enqueue_after`` in epoch ms."""

    enqueue_after: int
    status: StateStatus


class ManualRetryResponse(BaseModel):
    """Answer of manual retry (contract §2.12): the new state's id."""

    id: str
    status: StateStatus


class SecretsResponse(BaseModel):
    """GET ``/state/{id}/secrets`` (contract §2.13): plaintext values."""

    secrets: dict[str, str]


class RunListItem(BaseModel):
    """One run with its state counts (contract §7.1)."""

    run_id: str
    graph_name: str
    success_count: NonNegativeInt
    pending_count: NonNegativeInt
    errored_count: NonNegativeInt
    retried_count: NonNegativeInt
    total_count: NonNegativeInt
    status: RunStatus
    created_at: IsoDateTime


class RunsResponse(BaseModel):
    """GET ``/runs/{page}/{size}`` (contract §2.14, §7.1)."""

    namespace: str
    total: NonNegativeInt
    page: int
    size: int
    runs: list[RunListItem]


class GraphNode(BaseModel):
    """One state in a run graph (contract §2.15)."""

    id: str
    node_name: str
    identifier: str
    status: StateStatus
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
    node_count: NonNegativeInt
    edge_count: NonNegativeInt
    execution_summary: dict[str, NonNegativeInt]


class NodeRunDetailsResponse(BaseModel):
    """GET ``/graph/{g}/run/{run_id}/node/{node_id}`` (contract §2.16)."""

    id: str
    node_name: str
    identifier: str
    graph_name: str
    run_id: str
    status: StateStatus
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    error: str | None
    parents: dict[str, str]
    created_at: IsoDateTime
    updated_at: IsoDateTime


class NamespacesResponse(BaseModel):
    """GET ``/v0/namespaces`` (contract §2.17)."""

    namespaces: list[str]
    count: NonNegativeInt

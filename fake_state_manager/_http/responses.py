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

    message: Literal["OK"] = Field(..., description="Always OK (no store check)")


class ErrorResponse(BaseModel):
    """``{"detail": ...}`` of every HTTPException-style error (contract §1.3): 400, 401, 404,
    405, 409, 413."""

    model_config = ConfigDict(extra="forbid")

    detail: str = Field(..., description="What went wrong, in upstream's words (contract §2)")


class ValidationErrorDetail(BaseModel):
    """One item of a 422 ``detail``: FastAPI's ``ValidationError`` shape (contract §1.3)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(..., description="Error type, e.g. missing, json_invalid, int_parsing")
    loc: list[str | int] = Field(..., description='Where: "body" or "path", then the keys')
    msg: str = Field(..., description="Pydantic's message, e.g. Field required")
    input: Any = Field(..., description="The offending value (null when it is missing)")
    ctx: dict[str, Any] = Field(
        default_factory=dict, description="Error context (present for some error types)"
    )


class ValidationErrorResponse(BaseModel):
    """A 422 answer (contract §1.2, §1.3): FastAPI's ``HTTPValidationError`` shape."""

    model_config = ConfigDict(extra="forbid")

    detail: list[ValidationErrorDetail] = Field(..., description="One item per problem found")


class InternalErrorResponse(BaseModel):
    """The 500 of ``UnhandledExceptionsMiddleware`` (contract §1.3); for the fake, a bug."""

    model_config = ConfigDict(extra="forbid")

    success: Literal[False] = Field(..., description="Always false")
    detail: str = Field(..., description="The exception's text")


class RegisterNodesResponse(BaseModel):
    """Answer of PUT ``/nodes/`` (contract §2.1)."""

    runtime_name: str = Field(..., description="The runtime name of the request")
    registered_nodes: list[NodeRegistration] = Field(
        ..., description="The nodes as received, in request order, without namespace"
    )


class RegisteredNodeDocument(_Document, NodeRegistration):
    """A registered node as listed by GET ``/nodes/`` (contract §2.2): the echoed fields and
    where it lives."""

    namespace: str = Field(..., description="Namespace the node is registered in")
    runtime_name: str = Field(..., description="Runtime that registered it last")
    runtime_namespace: str = Field(..., description="Namespace of that runtime (the path's)")


class ListNodesResponse(BaseModel):
    """GET ``/nodes/`` (contract §2.2)."""

    namespace: str = Field(..., description="The namespace of the path")
    count: NonNegativeInt = Field(..., description="Number of nodes listed")
    nodes: list[RegisteredNodeDocument] = Field(..., description="Every node of the namespace")


class UpsertGraphTemplateResponse(BaseModel):
    """PUT and GET ``/graph/{graph_name}`` (contract §2.3, §2.4); secrets are names only."""

    nodes: list[NodeTemplate] = Field(..., description="The graph's nodes as stored")
    secrets: dict[str, bool] = Field(
        ..., description="Secret name -> true: the values never leave in this answer"
    )
    retry_policy: RetryPolicyModel = Field(
        ..., description="Retry policy (GET answers upstream's defaults, contract §2.4)"
    )
    store_config: StoreConfig = Field(
        ..., description="Store keys and defaults (GET answers upstream's defaults, §2.4)"
    )
    triggers: list[Trigger] = Field(..., description="Cron triggers (GET answers [], §2.4)")
    created_at: IsoDateTime
    updated_at: IsoDateTime
    validation_status: ValidationStatus = Field(
        ..., description="PENDING right after a PUT: verification runs after the answer (§4.4)"
    )
    validation_errors: list[str] = Field(..., description="Why verification failed, if it did")


class GraphTemplateDocument(_Document):
    """A stored graph template as listed by GET ``/graphs/`` (contract §2.5)."""

    name: str = Field(..., description="Name of the graph")
    namespace: str = Field(..., description="Namespace of the graph")
    nodes: list[NodeTemplate] = Field(..., description="The graph's nodes as stored")
    validation_status: ValidationStatus = Field(..., description="Verification outcome (§4.4)")
    validation_errors: list[str] = Field(..., description="Why verification failed, if it did")
    secrets: dict[str, str] = Field(..., description="Secret name -> opaque encrypted value")
    triggers: list[Trigger] = Field(..., description="Cron triggers as stored")
    retry_policy: RetryPolicyModel = Field(..., description="Retry policy as stored (§5)")
    store_config: StoreConfig = Field(..., description="Store keys and defaults as stored")


class ListGraphTemplatesResponse(BaseModel):
    """GET ``/graphs/`` (contract §2.5)."""

    namespace: str = Field(..., description="The namespace of the path")
    count: NonNegativeInt = Field(..., description="Number of templates listed")
    templates: list[GraphTemplateDocument] = Field(
        ..., description="Every graph template of the namespace"
    )


class TriggerGraphResponse(BaseModel):
    """Answer of a trigger (contract §2.6)."""

    status: Literal["CREATED"] = Field(..., description="Always CREATED: the root state's")
    run_id: str = Field(..., description="The new run's id (a uuid4)")


class EnqueuedState(BaseModel):
    """One claimed state (contract §2.7)."""

    state_id: str = Field(..., description="Id to report the outcome under")
    node_name: str = Field(..., description="Registered node that runs it")
    identifier: str = Field(..., description="Node identifier within the graph")
    inputs: dict[str, Any] = Field(..., description="Inputs, placeholders resolved (§3.5)")
    created_at: IsoDateTime


class EnqueueResponse(BaseModel):
    """Answer of enqueue (contract §2.7)."""

    count: NonNegativeInt = Field(..., description="Number of states claimed (at most batch_size)")
    namespace: str = Field(..., description="The namespace of the path")
    status: Literal["QUEUED"] = Field(..., description="Always QUEUED, even for no state")
    states: list[EnqueuedState] = Field(..., description="The claimed states (§3.3)")


class ExecutedResponse(BaseModel):
    """Answer of executed (contract §2.8)."""

    status: Literal["EXECUTED"] = Field(
        ..., description="Always EXECUTED; next states follow after the answer (§3.4)"
    )


class ErroredResponse(BaseModel):
    """Answer of errored (contract §2.9)."""

    status: Literal["ERRORED"] = Field(
        ..., description="Always ERRORED, even when a retry was created (§5)"
    )
    retry_created: bool = Field(..., description="Whether a retry state was created (§5)")


class PruneResponse(BaseModel):
    """Answer of prune (contract §2.10)."""

    enqueue_after: int = Field(..., description="The state's enqueue_after, unchanged (epoch ms)")
    status: Literal["PRUNED"] = Field(..., description="Always PRUNED")


class ReEnqueueAfterResponse(BaseModel):
    """Answer of re-enqueue-after (contract §2.11)."""

    enqueue_after: int = Field(..., description="When the state may be claimed again (epoch ms)")
    status: Literal["CREATED"] = Field(..., description="Always CREATED")


class ManualRetryResponse(BaseModel):
    """Answer of manual retry (contract §2.12)."""

    id: str = Field(..., description="The new state's id (§6.3)")
    status: Literal["CREATED"] = Field(..., description="Always CREATED: the new state's")


class SecretsResponse(BaseModel):
    """GET ``/state/{id}/secrets`` (contract §2.13)."""

    secrets: dict[str, str] = Field(
        ..., description="Every secret of the state's graph, name -> plaintext value"
    )


class RunListItem(BaseModel):
    """One run with its state counts (contract §7.1)."""

    run_id: str = Field(..., description="Id of the run")
    graph_name: str = Field(..., description="Graph the run belongs to")
    success_count: NonNegativeInt = Field(..., description="States SUCCESS or PRUNED")
    pending_count: NonNegativeInt = Field(..., description="States CREATED, QUEUED or EXECUTED")
    errored_count: NonNegativeInt = Field(..., description="States ERRORED or NEXT_CREATED_ERROR")
    retried_count: NonNegativeInt = Field(..., description="States RETRY_CREATED")
    total_count: NonNegativeInt = Field(..., description="Every state of the run")
    status: RunStatus = Field(
        ..., description="PENDING while any is pending, else FAILED if any errored, else SUCCESS"
    )
    created_at: IsoDateTime


class RunsResponse(BaseModel):
    """GET ``/runs/{page}/{size}`` (contract §2.14, §7.1)."""

    namespace: str = Field(..., description="The namespace of the path")
    total: NonNegativeInt = Field(..., description="Number of runs in the namespace")
    page: int = Field(..., description="The page of the path (from 1)")
    size: int = Field(..., description="The page size of the path")
    runs: list[RunListItem] = Field(..., description="This page's runs, newest first")


class GraphNode(BaseModel):
    """One state in a run graph (contract §2.15)."""

    id: str = Field(..., description="State id")
    node_name: str = Field(..., description="Registered node that runs it")
    identifier: str = Field(..., description="Node identifier within the graph")
    status: StateStatus = Field(..., description="Current status (§3.2)")
    error: str | None = Field(..., description="Error text, for a state that failed")


class GraphEdge(BaseModel):
    """A parent -> child edge between states (contract §7.2)."""

    source: str = Field(..., description="Id of the direct parent state")
    target: str = Field(..., description="Id of the child state")


class RunGraphResponse(BaseModel):
    """GET ``/states/run/{run_id}/graph`` (contract §2.15, §7.2)."""

    root_states: list[GraphNode] = Field(..., description="States without parents")
    graph_name: str = Field(..., description="The first state's graph (empty: no states)")
    nodes: list[GraphNode] = Field(..., description="Every state of the run in this namespace")
    edges: list[GraphEdge] = Field(..., description="One per state whose direct parent is listed")
    node_count: NonNegativeInt = Field(..., description="Length of nodes")
    edge_count: NonNegativeInt = Field(..., description="Length of edges")
    execution_summary: dict[str, NonNegativeInt] = Field(
        ..., description="Each of the eight state statuses -> how many states have it"
    )


class NodeRunDetailsResponse(BaseModel):
    """GET ``/graph/{g}/run/{run_id}/node/{node_id}`` (contract §2.16)."""

    id: str = Field(..., description="State id")
    node_name: str = Field(..., description="Registered node that runs it")
    identifier: str = Field(..., description="Node identifier within the graph")
    graph_name: str = Field(..., description="Graph of the run")
    run_id: str = Field(..., description="Id of the run")
    status: StateStatus = Field(..., description="Current status (§3.2)")
    inputs: dict[str, Any] = Field(..., description="Inputs, placeholders resolved (§3.5)")
    outputs: dict[str, Any] = Field(..., description="Outputs reported as executed (§3.4)")
    error: str | None = Field(..., description="Error text, for a state that failed")
    parents: dict[str, str] = Field(
        ..., description="Identifier -> id of every ancestor state, the direct parent last (§3.1)"
    )
    created_at: IsoDateTime
    updated_at: IsoDateTime


class NamespacesResponse(BaseModel):
    """GET ``/v0/namespaces`` (contract §2.17)."""

    namespaces: list[str] = Field(..., description="Namespaces with registered nodes, ascending")
    count: NonNegativeInt = Field(..., description="Length of namespaces")

"""Pydantic models of every ``/v0`` request body (contract §2).

Request models validate bodies with upstream's rules (a violation is a 422, contract §1.3);
unknown fields are ignored (pydantic's default ``extra="ignore"``, contract §2.1). Validate the
parsed JSON with ``Model.model_validate(data)`` (pydantic's lax Python mode, as FastAPI does), so
e.g. ``"5"`` is accepted for an ``int`` like upstream. The graph template's parts come from
:mod:`fake_state_manager._graph.models`, which the graph rules share; the response models are in
:mod:`fake_state_manager._http.responses`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from exo_ref import RetryPolicyModel
from fake_state_manager._graph.models import NodeTemplate, StoreConfig, Trigger

__all__ = [
    "MAX_BATCH_SIZE",
    "EnqueueRequest",
    "ErroredRequest",
    "ExecutedRequest",
    "ManualRetryRequest",
    "NodeRegistration",
    "PruneRequest",
    "ReEnqueueAfterRequest",
    "RegisterNodesRequest",
    "TriggerGraphRequest",
    "UpsertGraphTemplateRequest",
]


class NodeRegistration(BaseModel):
    """One node of a registration (contract §2.1); ``namespace`` is accepted and dropped."""

    name: str = Field(..., description="Unique name of the node")
    inputs_schema: dict[str, Any] = Field(..., description="JSON schema of the node's inputs")
    outputs_schema: dict[str, Any] = Field(..., description="JSON schema of the node's outputs")
    secrets: list[str] = Field(..., description="Names of the secrets the node needs")


class RegisterNodesRequest(BaseModel):
    """PUT ``/nodes/`` (contract §2.1); ``runtime_namespace`` is accepted and dropped."""

    runtime_name: str = Field(..., description="Name of the runtime registering the nodes")
    nodes: list[NodeRegistration] = Field(..., description="Nodes to register")


class UpsertGraphTemplateRequest(BaseModel):
    """PUT ``/graph/{graph_name}`` (contract §2.3, §4.1)."""

    secrets: dict[str, str] = Field(..., description="Secrets of the graph (name -> value)")
    nodes: list[NodeTemplate] = Field(..., description="Nodes of the graph")
    retry_policy: RetryPolicyModel = Field(
        default_factory=RetryPolicyModel, description="Retry policy of the graph"
    )
    store_config: StoreConfig = Field(
        default_factory=StoreConfig, description="Store configuration of the graph"
    )
    triggers: list[Trigger] = Field(default_factory=list, description="Triggers of the graph")


# The largest batch one enqueue may ask for (an addition; exo_ref's Runtime refuses more too).
MAX_BATCH_SIZE = 1000


class TriggerGraphRequest(BaseModel):
    """POST ``/graph/{graph_name}/trigger`` (contract §2.6)."""

    inputs: dict[str, str] = Field(default_factory=dict, description="Inputs of the root node")
    store: dict[str, str] = Field(default_factory=dict, description="Initial store of the run")
    start_delay: int = Field(0, ge=0, description="Delay before the root runs, in milliseconds")


class EnqueueRequest(BaseModel):
    """POST ``/states/enqueue`` (contract §2.7).

    Upstream bounds ``batch_size`` nowhere (and fires that many concurrent claims); the fake
    refuses more than :data:`MAX_BATCH_SIZE` with a 422 so that one poll cannot claim every
    ready state at once (docs/fidelity.md). Zero and negative values claim nothing, as upstream.
    """

    nodes: list[str] = Field(..., description="Names of the nodes to claim states for")
    batch_size: int = Field(
        ..., le=MAX_BATCH_SIZE, description="Maximum number of states to claim (at most 1000)"
    )


class ExecutedRequest(BaseModel):
    """POST ``/state/{id}/executed`` (contract §2.8): one object per output."""

    outputs: list[dict[str, Any]] = Field(..., description="Outputs of the node")


class ErroredRequest(BaseModel):
    """POST ``/state/{id}/errored`` (contract §2.9)."""

    error: str = Field(..., description="Error message")


class PruneRequest(BaseModel):
    """POST ``/state/{id}/prune`` (contract §2.10, §6.1)."""

    data: dict[str, Any] = Field(..., description="Data stored with the pruned state")


class ReEnqueueAfterRequest(BaseModel):
    """POST ``/state/{id}/re-enqueue-after`` (contract §2.11, §6.2): a delay in ms, > 0."""

    enqueue_after: int = Field(..., gt=0, description="Delay in milliseconds")


class ManualRetryRequest(BaseModel):
    """POST ``/state/{id}/manual-retry`` (contract §2.12, §6.3)."""

    fanout_id: str = Field(..., description="Fan-out id of the new state (a fresh uuid4)")

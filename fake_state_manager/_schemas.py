"""Pydantic models of every ``/v0`` request body, and the enums they share (contract §2).

Request models validate bodies with upstream's rules (a violation is a 422, contract §1.3);
unknown fields are ignored (pydantic's default ``extra="ignore"``, contract §2.1). Validate the
parsed JSON with ``Model.model_validate(data)`` (pydantic's lax Python mode, as FastAPI does), so
e.g. ``"5"`` is accepted for an ``int`` like upstream.

Where the server applies the same rules as the SDK, the models subclass ``exo_ref._models``
(contract §8.8) instead of repeating them. Class names follow upstream's server models
(``NodeTemplate``, ``Unites``, ``StoreConfig``) because their ``repr`` appears inside some error
texts (contract §4.3, the root check prints the zero in-degree nodes).

The response models (for the OpenAPI document only) live in ``_responses.py``.
``model_json_schema()`` works on every model listed in ``__all__``.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, field_validator

from exo_ref._models import (
    CronTrigger,
    GraphNodeModel,
    RetryPolicyModel,
    StoreConfigModel,
    UnitesModel,
)
from fake_state_manager import _cron

__all__ = [
    "CronTriggerValue",
    "EnqueueRequest",
    "ErroredRequest",
    "ExecutedRequest",
    "GraphTemplateValidationStatus",
    "ManualRetryRequest",
    "NodeRegistration",
    "NodeTemplate",
    "PruneRequest",
    "ReEnqueueAfterRequest",
    "RegisterNodesRequest",
    "RetryPolicyModel",
    "RunStatusEnum",
    "StateStatusEnum",
    "StoreConfig",
    "Trigger",
    "TriggerGraphRequest",
    "TriggerTypeEnum",
    "Unites",
    "UpsertGraphTemplateRequest",
]

INVALID_CRON = "Invalid cron expression"


# -- enums -----------------------------------------------------------------------------------


class StateStatusEnum(str, Enum):  # noqa: UP042 - str(member) as upstream
    """State statuses (contract §3.2); the order is the run-graph summary's (§7.2)."""

    CREATED = "CREATED"
    QUEUED = "QUEUED"
    EXECUTED = "EXECUTED"
    ERRORED = "ERRORED"
    NEXT_CREATED_ERROR = "NEXT_CREATED_ERROR"
    SUCCESS = "SUCCESS"
    PRUNED = "PRUNED"
    RETRY_CREATED = "RETRY_CREATED"


class GraphTemplateValidationStatus(str, Enum):  # noqa: UP042 - str(member) as upstream
    """Graph template verification status (contract §4.4); ONGOING is never set."""

    VALID = "VALID"
    INVALID = "INVALID"
    PENDING = "PENDING"
    ONGOING = "ONGOING"


class RunStatusEnum(str, Enum):  # noqa: UP042 - str(member) as upstream
    """Derived run status (contract §3.6, §7.1)."""

    SUCCESS = "SUCCESS"
    PENDING = "PENDING"
    FAILED = "FAILED"


class TriggerTypeEnum(str, Enum):  # noqa: UP042 - str(member) as upstream
    """Graph trigger types (contract §4.1): only cron."""

    CRON = "CRON"


# -- graph template parts (§4.1) -------------------------------------------------------------


class Unites(UnitesModel):
    """Server-side ``unites`` (same rules as the SDK's :class:`UnitesModel`)."""


class NodeTemplate(GraphNodeModel):
    """Server-side graph node: the SDK's rules, but ``inputs`` is required (contract §4.1)."""

    inputs: dict[str, Any] = Field(..., description="Inputs of the node")
    unites: Unites | None = Field(default=None, description="Unites of the node")


class StoreConfig(StoreConfigModel):
    """Server-side store configuration (same rules as the SDK's :class:`StoreConfigModel`)."""


class CronTriggerValue(CronTrigger):
    """``value`` of a CRON trigger; the expression must satisfy ``croniter.is_valid``."""

    @field_validator("expression")
    @classmethod
    def _validate_expression(cls, v: str) -> str:
        if not _cron.is_valid(v):
            raise ValueError(INVALID_CRON)
        return v


class Trigger(BaseModel):
    """A graph trigger: ``{"type": "CRON", "value": {"expression": ...}}`` (contract §4.1)."""

    type: TriggerTypeEnum = Field(..., description="Type of the trigger")
    value: CronTriggerValue = Field(..., description="Value of the trigger")


# -- requests --------------------------------------------------------------------------------


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


class TriggerGraphRequest(BaseModel):
    """POST ``/graph/{graph_name}/trigger`` (contract §2.6)."""

    inputs: dict[str, str] = Field(default_factory=dict, description="Inputs of the root node")
    store: dict[str, str] = Field(default_factory=dict, description="Initial store of the run")
    start_delay: int = Field(0, ge=0, description="Delay before the root runs, in milliseconds")


class EnqueueRequest(BaseModel):
    """POST ``/states/enqueue`` (contract §2.7): ``batch_size`` has no bounds."""

    nodes: list[str] = Field(..., description="Names of the nodes to claim states for")
    batch_size: int = Field(..., description="Maximum number of states to claim")


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

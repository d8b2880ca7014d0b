"""The graph template's parts as the server validates them (contract §4.1, §4.4).

The graph rules (structural checks, verification) and the upsert request body share these
models. Where the server applies the same rules as the SDK they subclass ``exo_ref``'s public
models (contract §8.8); class names follow upstream's server models (``NodeTemplate``,
``Unites``, ``StoreConfig``) because their ``repr`` appears inside some error texts (contract
§4.3, the root check prints the zero in-degree nodes).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Self

from pydantic import BaseModel, Field, field_validator, model_validator

from exo_ref import CronTrigger, GraphNodeModel, StoreConfigModel, UnitesModel
from fake_state_manager._graph import cron as _cron

__all__ = [
    "INVALID_CRON",
    "CronTriggerValue",
    "NodeTemplate",
    "StoreConfig",
    "Trigger",
    "TriggerTypeEnum",
    "Unites",
]

INVALID_CRON = "Invalid cron expression"


class TriggerTypeEnum(str, Enum):  # noqa: UP042 - str(member) as upstream
    """Graph trigger types (contract §4.1): only cron."""

    CRON = "CRON"


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
    """A graph trigger: ``{"type": "CRON", "value": {"expression": ...}}`` (contract §4.1).

    ``value`` is kept as the string map it was sent as (extra keys included, as upstream stores
    it) and checked as a :class:`CronTriggerValue` after the trigger itself validated: errors in
    it are then located at ``["body", "triggers", i, "expression"]``, with no ``"value"`` segment,
    exactly as upstream reports them (contract §4.1).
    """

    type: TriggerTypeEnum = Field(..., description="Type of the trigger")
    value: dict[str, str] = Field(default_factory=dict, description="Value of the trigger")

    @model_validator(mode="after")
    def _validate_value(self) -> Self:
        if self.type == TriggerTypeEnum.CRON:
            # A ValidationError raised here is merged into the outer one at this model's place.
            CronTriggerValue.model_validate(self.value)
        return self

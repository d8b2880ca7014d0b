"""The SDK's client-side graph models (contract §8.8, §4.1, §5).

These mirror ``exospherehost.models`` field for field: the names, defaults, descriptions and
validators are the upstream ones, so ``model_dump()`` produces exactly the body upstream's
``StateManager.upsert_graph`` sends (contract §8.7). The fake state manager subclasses them for
its server-side graph models, because the server applies the same rules; the one difference is
that the server's ``NodeTemplate.inputs`` is required while the SDK's ``GraphNodeModel.inputs``
defaults to ``{}`` (contract §8.8).

Validation messages are the upstream ones verbatim (contract §4.1): clients read them in 422
bodies, so they are part of the wire contract.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

from pydantic import BaseModel, Field, field_validator

__all__ = [
    "CronTrigger",
    "GraphNodeModel",
    "RetryPolicyModel",
    "RetryStrategyEnum",
    "StoreConfigModel",
    "UnitesModel",
    "UnitesStrategyEnum",
]


class UnitesStrategyEnum(str, Enum):  # noqa: UP042 - str(member) as upstream
    """When a unite node may run (contract §3.5 step 4b)."""

    ALL_SUCCESS = "ALL_SUCCESS"
    ALL_DONE = "ALL_DONE"


class UnitesModel(BaseModel):
    """``unites`` of a graph node: wait for every descendant of one ancestor state."""

    identifier: str = Field(..., description="Identifier of the node")
    strategy: UnitesStrategyEnum = Field(
        default=UnitesStrategyEnum.ALL_SUCCESS, description="Strategy of the unites"
    )


def _trimmed(value: str, empty: str) -> str:
    """Return ``value`` stripped; raise ValueError(``empty``) if nothing is left."""
    trimmed = value.strip()
    if trimmed == "":
        raise ValueError(empty)
    return trimmed


def _no_rule(item: str) -> str | None:
    return None


def _trimmed_unique(
    items: Iterable[str | None],
    *,
    empty: str,
    duplicated: str,
    rule: Callable[[str], str | None] = _no_rule,
) -> list[str]:
    """Trim every item and check it; raise one ValueError listing all the problems, one a line.

    An item is refused when it is empty after trimming (message ``empty``), when ``rule`` returns
    a message for it, or when it repeats an earlier item (``duplicated``, formatted with it).
    """
    seen: set[str] = set()
    trimmed_items: list[str] = []
    errors: list[str] = []
    for item in items:
        trimmed = item.strip() if item is not None else ""
        if trimmed == "":
            errors.append(empty)
        elif (problem := rule(trimmed)) is not None:
            errors.append(problem)
        elif trimmed in seen:
            errors.append(duplicated.format(trimmed))
        else:
            seen.add(trimmed)
            trimmed_items.append(trimmed)
    if errors:
        raise ValueError("\n".join(errors))
    return trimmed_items


class GraphNodeModel(BaseModel):
    """One node of a graph template, as the SDK sends it (contract §4.1 NodeTemplate, §8.8)."""

    node_name: str = Field(..., description="Name of the node")
    namespace: str = Field(..., description="Namespace of the node")
    identifier: str = Field(..., description="Identifier of the node")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Inputs of the node")
    next_nodes: list[str] | None = Field(default=None, description="Next nodes to execute")
    unites: UnitesModel | None = Field(default=None, description="Unites of the node")

    @field_validator("node_name")
    @classmethod
    def _validate_node_name(cls, v: str) -> str:
        return _trimmed(v, "Node name cannot be empty")

    @field_validator("identifier")
    @classmethod
    def _validate_identifier(cls, v: str) -> str:
        trimmed = _trimmed(v, "Node identifier cannot be empty")
        if trimmed == "store":
            # "store" names the run's key-value store in placeholders (contract §4.2).
            raise ValueError("Node identifier cannot be reserved word 'store'")
        return trimmed

    @field_validator("next_nodes")
    @classmethod
    def _validate_next_nodes(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        return _trimmed_unique(
            v,
            empty="Next node identifier cannot be empty",
            duplicated="Next node identifier {} is not unique",
        )

    @field_validator("unites")
    @classmethod
    def _validate_unites(cls, v: UnitesModel | None) -> UnitesModel | None:
        if v is None:
            return None
        identifier = _trimmed(v.identifier, "Unites identifier cannot be empty")
        # model_copy keeps the concrete class (the server subclass names it ``Unites``).
        return v.model_copy(update={"identifier": identifier})


class RetryStrategyEnum(str, Enum):  # noqa: UP042 - str(member) as upstream
    """The nine retry delay formulas (contract §5)."""

    EXPONENTIAL = "EXPONENTIAL"
    EXPONENTIAL_FULL_JITTER = "EXPONENTIAL_FULL_JITTER"
    EXPONENTIAL_EQUAL_JITTER = "EXPONENTIAL_EQUAL_JITTER"

    LINEAR = "LINEAR"
    LINEAR_FULL_JITTER = "LINEAR_FULL_JITTER"
    LINEAR_EQUAL_JITTER = "LINEAR_EQUAL_JITTER"

    FIXED = "FIXED"
    FIXED_FULL_JITTER = "FIXED_FULL_JITTER"
    FIXED_EQUAL_JITTER = "FIXED_EQUAL_JITTER"


class RetryPolicyModel(BaseModel):
    """Graph-level retry policy applied by the ``errored`` endpoint (contract §5)."""

    max_retries: int = Field(default=3, description="The maximum number of retries", ge=0)
    strategy: RetryStrategyEnum = Field(
        default=RetryStrategyEnum.EXPONENTIAL, description="The method of retry"
    )
    backoff_factor: int = Field(
        default=2000,
        description="The backoff factor in milliseconds (default: 2000 = 2 seconds)",
        gt=0,
    )
    exponent: int = Field(
        default=2, description="The exponent for the exponential retry strategy", gt=0
    )
    max_delay: int | None = Field(
        default=None,
        description="The maximum delay in milliseconds (no default limit when None)",
        gt=0,
    )


def _dotted_key(key: str) -> str | None:
    # "." would make ``${{ store.a.b }}`` ambiguous (contract §4.2).
    return f"Key '{key}' cannot contain '.' character" if "." in key else None


def _check_store_keys(keys: Iterable[str]) -> list[str]:
    """Apply the store key rules of contract §4.1; return the trimmed keys."""
    return _trimmed_unique(
        keys,
        empty="Key cannot be empty or contain only whitespace",
        duplicated="Key '{}' is duplicated",
        rule=_dotted_key,
    )


class StoreConfigModel(BaseModel):
    """The run store's required keys and defaults (contract §4.1 store_config, §4.6)."""

    required_keys: list[str] = Field(default_factory=list, description="Required keys of the store")
    default_values: dict[str, str] = Field(
        default_factory=dict, description="Default values of the store"
    )

    @field_validator("required_keys")
    @classmethod
    def _validate_required_keys(cls, v: list[str]) -> list[str]:
        return _check_store_keys(v)

    @field_validator("default_values")
    @classmethod
    def _validate_default_values(cls, v: dict[str, str]) -> dict[str, str]:
        # With no error every key is kept, so the trimmed keys line up with the values.
        keys = _check_store_keys(v)
        return {key: str(value) for key, value in zip(keys, v.values(), strict=True)}


class CronTrigger(BaseModel):
    """A cron trigger as the SDK takes it: the expression only, unchecked (contract §8.8).

    ``StateManager.upsert_graph`` wraps it as ``{"type": "CRON", "value": {"expression": ...}}``;
    the server validates the expression (contract §4.1).
    """

    expression: str = Field(..., description="Cron expression")

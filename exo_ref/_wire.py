"""The JSON bodies the runtime sends and reads (contract §2.1, §2.7-2.13, §8.3).

Typed pydantic models so that a malformed answer fails in one place with a clear
:class:`~exo_ref.InvalidResponseError` instead of a ``KeyError`` deep in a worker. Unknown fields
are ignored: a newer server may add some.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ._node import BaseNode

__all__ = [
    "ClaimedState",
    "EnqueueBody",
    "EnqueueResponse",
    "ErroredBody",
    "ExecutedBody",
    "PruneBody",
    "ReEnqueueBody",
    "RegisterRequest",
    "RegisteredNodeSpec",
    "SecretsResponse",
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ClaimedState(_Wire):
    """One state returned by a poll (contract §2.7)."""

    state_id: str
    node_name: str
    identifier: str = ""
    inputs: dict[str, Any] = {}
    created_at: str | None = None


class EnqueueResponse(_Wire):
    count: int
    status: str = "QUEUED"
    states: list[ClaimedState]


class RegisteredNodeSpec(_Wire):
    """One node of a registration request (contract §8.3)."""

    name: str
    namespace: str
    inputs_schema: dict[str, Any]
    outputs_schema: dict[str, Any]
    secrets: list[str]


class RegisterRequest(_Wire):
    """The body upstream's runtime sends to ``PUT /nodes/`` (contract §8.3)."""

    runtime_name: str
    runtime_namespace: str
    nodes: list[RegisteredNodeSpec]

    @classmethod
    def for_nodes(
        cls, *, name: str, namespace: str, nodes: Sequence[type[BaseNode]]
    ) -> RegisterRequest:
        return cls(
            runtime_name=name,
            runtime_namespace=namespace,
            nodes=[
                RegisteredNodeSpec(
                    name=node.__name__,
                    namespace=namespace,
                    inputs_schema=node.Inputs.model_json_schema(),
                    outputs_schema=node.Outputs.model_json_schema(),
                    secrets=list(node.Secrets.model_fields),
                )
                for node in nodes
            ],
        )


class SecretsResponse(_Wire):
    secrets: dict[str, str]


class ExecutedBody(_Wire):
    outputs: list[dict[str, Any]]


class ErroredBody(_Wire):
    error: str


class PruneBody(_Wire):
    data: dict[str, Any]


class ReEnqueueBody(_Wire):
    enqueue_after: int


class EnqueueBody(_Wire):
    nodes: list[str]
    batch_size: int

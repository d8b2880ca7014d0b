"""The JSON bodies the SDK sends and reads (contract §2.1-§2.16, §7, §8.3).

Two kinds, by who reads them:

* the runtime's hot path (register, enqueue, report): pydantic models, so that a malformed
  answer fails in one place with a clear :class:`~exo_ref.InvalidResponseError` instead of a
  ``KeyError`` deep in a worker. Unknown fields are ignored: a newer server may add some;
* the answers of :class:`~exo_ref.StateManager`'s calls (graphs, trigger, runs, run graph,
  node details, nodes, manual retry): ``TypedDict`` s, because they are handed to the caller as
  the JSON the server sent, unchanged; the types tell a reader and mypy the fields, and
  :data:`~exo_ref.StateStatus`, :data:`~exo_ref.RunStatus` and
  :data:`~exo_ref.ValidationStatus` the values a status can take, so that a typo such as
  ``node["status"] == "SUCCES"`` is an error under ``mypy --strict``, not a branch that never
  runs (``tests/exo_ref/mypy_wire.py`` holds that).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict

from ._node import BaseNode
from ._statuses import RunStatus, StateStatus, ValidationStatus

__all__ = [
    "ClaimedState",
    "EnqueueBody",
    "EnqueueResponse",
    "ErroredBody",
    "ExecutedBody",
    "GraphTemplate",
    "GraphTemplateList",
    "ManualRetryResponse",
    "NodeDetails",
    "NodeList",
    "PruneBody",
    "ReEnqueueBody",
    "RegisterRequest",
    "RegisteredNode",
    "RegisteredNodeSpec",
    "RunGraph",
    "RunGraphEdge",
    "RunGraphNode",
    "RunSummary",
    "RunsPage",
    "SecretsResponse",
    "StoredGraphTemplate",
    "TriggerResponse",
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


# -- read calls of StateManager (contract §2.6, §2.14-§2.16, §7) --------------------------------


class TriggerResponse(TypedDict):
    """``POST .../trigger`` (contract §2.6): the root state is always ``CREATED``."""

    status: Literal["CREATED"]
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
    status: RunStatus
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
    status: StateStatus
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
    status: StateStatus
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    error: str | None
    parents: dict[str, str]
    created_at: str
    updated_at: str


class ManualRetryResponse(TypedDict):
    """``POST .../state/{id}/manual-retry`` (contract §2.12): the new state's id."""

    id: str
    status: Literal["CREATED"]


# -- graph templates and registered nodes (contract §2.2-§2.5) -----------------------------------
# A template's parts (``nodes``, ``retry_policy``, ``store_config``, ``triggers``) are left as
# JSON objects: their one description is the model they were sent as, e.g.
# ``GraphNodeModel.model_validate(template["nodes"][0])`` reads a node back.


class GraphTemplate(TypedDict):
    """``PUT``/``GET .../graph/{graph_name}`` (contract §2.3, §2.4); secrets by name only."""

    nodes: list[dict[str, Any]]
    secrets: dict[str, bool]
    retry_policy: dict[str, Any]
    store_config: dict[str, Any]
    triggers: list[dict[str, Any]]
    created_at: str
    updated_at: str
    validation_status: ValidationStatus
    validation_errors: list[str]


class StoredGraphTemplate(TypedDict):
    """One item of the graphs list: the stored document, secrets as ciphertexts (§2.5)."""

    _id: str
    created_at: str
    updated_at: str
    name: str
    namespace: str
    nodes: list[dict[str, Any]]
    validation_status: ValidationStatus
    validation_errors: list[str]
    secrets: dict[str, str]
    triggers: list[dict[str, Any]]
    retry_policy: dict[str, Any]
    store_config: dict[str, Any]


class GraphTemplateList(TypedDict):
    """``GET .../graphs/`` (contract §2.5)."""

    namespace: str
    count: int
    templates: list[StoredGraphTemplate]


class RegisteredNode(TypedDict):
    """One item of the nodes list: a registration and where it lives (contract §2.2)."""

    _id: str
    name: str
    inputs_schema: dict[str, Any]
    outputs_schema: dict[str, Any]
    secrets: list[str]
    namespace: str
    runtime_name: str
    runtime_namespace: str
    created_at: str
    updated_at: str


class NodeList(TypedDict):
    """``GET .../nodes/`` (contract §2.2)."""

    namespace: str
    count: int
    nodes: list[RegisteredNode]

"""The documents of the fake's store (contract §3.1): states, runs, graph templates, cron docs.

Plain dataclasses with ``slots`` (about 1 KiB per stored state, see the memory test), the §3.2
status names as interned strings, and the §1.1 datetime rendering. The indexes over them live in
:mod:`.store`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, get_args

from exo_ref import RetryPolicyModel, StateStatus, ValidationStatus

__all__ = [
    "ALL_STATUSES",
    "CREATED",
    "ERRORED",
    "EXECUTED",
    "MAX_ENQUEUE_AFTER_MS",
    "NEXT_CREATED_ERROR",
    "PRUNED",
    "QUEUED",
    "RETRY_CREATED",
    "SUCCESS",
    "CronDoc",
    "GraphTemplate",
    "Run",
    "State",
    "epoch_ms",
    "iso_utc",
]



# Documents hold the statuses as plain strings (cheap to compare and JSON-ready), the SDK's
# ``StateStatus`` values in the contract's order, which is the run-graph summary's (§7.2).
ALL_STATUSES: tuple[str, ...] = get_args(StateStatus)
(
    CREATED,
    QUEUED,
    EXECUTED,
    ERRORED,
    NEXT_CREATED_ERROR,
    SUCCESS,
    PRUNED,
    RETRY_CREATED,
) = ALL_STATUSES


#: The largest ``enqueue_after`` (ms) upstream can store (a BSON int64): delays are clamped or
#: refused against it.
MAX_ENQUEUE_AFTER_MS = 2**63 - 1


def epoch_ms(seconds: float) -> int:
    """Epoch seconds as the integer milliseconds ``enqueue_after`` uses (§1.1)."""
    return int(seconds * 1000)


@functools.lru_cache(maxsize=256)
def iso_utc(seconds: float) -> str:
    """Render epoch seconds like upstream's FastAPI does a Mongo datetime (§1.1).

    Millisecond precision, no offset: ``2026-01-01T00:00:00.123000`` (or no fraction when the
    milliseconds are zero). The fake uses UTC where upstream uses naive local time. Cached: a
    fan-out's states share one ``created_at``, and each poll renders a batch of them.
    """
    millis = epoch_ms(seconds)
    moment = datetime.fromtimestamp(millis // 1000, UTC).replace(
        microsecond=(millis % 1000) * 1000, tzinfo=None
    )
    return moment.isoformat()


@dataclass(slots=True, eq=False)
class State:
    """One state document (contract §3.1). ``created_at``/``updated_at`` are epoch seconds."""

    id: str
    seq: int
    node_name: str
    namespace_name: str
    identifier: str
    graph_name: str
    run_id: str
    status: str
    inputs: dict[str, Any]
    parents: dict[str, str]
    enqueue_after: int
    fanout_id: str
    created_at: float
    updated_at: float
    outputs: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    does_unites: bool = False
    state_fingerprint: str = ""
    retry_count: int = 0
    manual_retry_fanout_id: str = ""
    # Epoch ms of the latest claim (§3.3), kept (and persisted) for ``queued_timeout``; 0: never
    # claimed, or claimed by a fake that did not record it. Not a contract field: never served.
    queued_at: int = 0
    heap_token: int = 0  # the _delayed entry that is current for this state (0: none)

    def unique_key(self) -> tuple[str, str, str, str, str, int, str]:
        """The §3.1 unique 7-tuple that stops duplicate retries and manual retries."""
        return (
            self.node_name,
            self.namespace_name,
            self.graph_name,
            self.identifier,
            self.run_id,
            self.retry_count,
            self.fanout_id,
        )

    def to_dict(self) -> dict[str, Any]:
        """The §3.1 fields, JSON-ready, with ``id`` as a string."""
        return {
            "id": self.id,
            "node_name": self.node_name,
            "namespace_name": self.namespace_name,
            "identifier": self.identifier,
            "graph_name": self.graph_name,
            "run_id": self.run_id,
            "status": self.status,
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "data": dict(self.data),
            "error": self.error,
            "parents": dict(self.parents),
            "does_unites": self.does_unites,
            "state_fingerprint": self.state_fingerprint,
            "enqueue_after": self.enqueue_after,
            "retry_count": self.retry_count,
            "fanout_id": self.fanout_id,
            "manual_retry_fanout_id": self.manual_retry_fanout_id,
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
        }


@dataclass(slots=True, eq=False)
class Run:
    """A run document (§3.1 ``runs``)."""

    run_id: str
    graph_name: str
    namespace_name: str
    created_at: float
    seq: int


@dataclass(slots=True, eq=False)
class GraphTemplate:
    """A stored graph template (§2.5). ``secrets`` maps names to opaque encrypted values."""

    id: str
    name: str
    namespace: str
    nodes: list[dict[str, Any]]
    secrets: dict[str, str]
    retry_policy: RetryPolicyModel  # validated once, at upsert; rendered with model_dump
    store_config: dict[str, Any]
    triggers: list[dict[str, Any]]
    created_at: float
    updated_at: float
    validation_status: ValidationStatus = "PENDING"
    validation_errors: list[str] = field(default_factory=list)
    by_identifier: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    root_identifier: str | None = None

    def __post_init__(self) -> None:
        # Lookups by identifier are O(1); the root is found once (§4.3 guarantees exactly one).
        self.by_identifier = {node["identifier"]: node for node in self.nodes}
        targets = {n for node in self.nodes for n in (node.get("next_nodes") or [])}
        for node in self.nodes:
            if node["identifier"] not in targets and node.get("unites") is None:
                self.root_identifier = node["identifier"]
                break

    def node(self, identifier: str) -> dict[str, Any] | None:
        """The node template with this identifier, or ``None``."""
        return self.by_identifier.get(identifier)

    def root(self) -> dict[str, Any]:
        """The single node with in-degree zero (structural validation guarantees one, §4.3)."""
        if self.root_identifier is None:
            raise LookupError(f"graph template {self.name!r} has no root node")
        return self.by_identifier[self.root_identifier]


@dataclass(slots=True, eq=False)
class CronDoc:
    """A ``DatabaseTriggers`` document (§4.7). ``trigger_time`` is epoch seconds."""

    id: str
    expression: str
    graph_name: str
    namespace: str
    trigger_time: float
    trigger_status: str = "PENDING"
    expires_at: float | None = None

"""The fake state manager's in-memory store: plain data plus the indexes the engine needs.

Every collection of contract §3.1 lives here (states, runs, store values, registered nodes, graph
templates, cron trigger docs), with indexes chosen so that no request's cost grows with history
(issue 2, "Cost must not grow with history"):

- ``_ready[(namespace, node_name)]``: CREATED states whose ``enqueue_after`` has passed, in the
  order they became claimable (an ``OrderedDict`` used as an ordered set: O(1) pop from the
  front, O(1) removal by id). Enqueue pops from here: O(batch).
- ``_delayed``: a heap of ``(enqueue_after, token, state)`` for CREATED states not yet due. Stale
  entries (the state changed since) are skipped lazily by token; due entries are promoted to
  ``_ready`` when an enqueue or ``next_due_ms`` looks at the heap.
- per-run list of states and per-run status counters (runs list, §7.1);
- per-ancestor status counters (``parents`` values) for unite readiness (§3.5 step 4b);
- the two unique indexes of §3.1 (unite fingerprint; the 7-tuple) as sets.

All mutation of a state's ``status`` / ``enqueue_after`` goes through :meth:`Store.set_status`
and :meth:`Store.set_created`, which keep the indexes in step. :func:`check_invariants` re-derives
every index from the states and compares; tests and fuzzers call it.
"""

from __future__ import annotations

import heapq
import itertools
import os
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fake_state_manager._errors import DuplicateKeyError

__all__ = [
    "ALL_STATUSES",
    "CREATED",
    "ERRORED",
    "EXECUTED",
    "NEXT_CREATED_ERROR",
    "PRUNED",
    "QUEUED",
    "RETRY_CREATED",
    "SUCCESS",
    "CronDoc",
    "GraphTemplate",
    "Run",
    "State",
    "Store",
    "check_invariants",
    "iso_utc",
]

# Contract §3.2 state statuses (plain interned strings: cheap and JSON-ready).
CREATED = "CREATED"
QUEUED = "QUEUED"
EXECUTED = "EXECUTED"
ERRORED = "ERRORED"
NEXT_CREATED_ERROR = "NEXT_CREATED_ERROR"
SUCCESS = "SUCCESS"
PRUNED = "PRUNED"
RETRY_CREATED = "RETRY_CREATED"
ALL_STATUSES = (
    CREATED,
    QUEUED,
    EXECUTED,
    ERRORED,
    NEXT_CREATED_ERROR,
    SUCCESS,
    PRUNED,
    RETRY_CREATED,
)


def iso_utc(seconds: float) -> str:
    """Render epoch seconds like upstream's FastAPI does a Mongo datetime (§1.1).

    Millisecond precision, no offset: ``2026-01-01T00:00:00.123000`` (or no fraction when the
    milliseconds are zero). The fake uses UTC where upstream uses naive local time.
    """
    millis = int(seconds * 1000)
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
    retry_policy: dict[str, Any]
    store_config: dict[str, Any]
    triggers: list[dict[str, Any]]
    created_at: float
    updated_at: float
    validation_status: str = "PENDING"
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


class Store:
    """Plain in-memory collections with the indexes described in the module docstring.

    The store knows nothing about the contract's rules; it only keeps data and indexes
    consistent. It is not thread-safe on its own: the engine serialises access.
    """

    def __init__(self, *, id_prefix: int | None = None) -> None:
        prefix = id_prefix if id_prefix is not None else int.from_bytes(os.urandom(4), "big")
        self._id_prefix = f"{prefix & 0xFFFFFFFF:08x}"
        self._ids = itertools.count(1)
        self._tokens = itertools.count(1)
        self.states: dict[str, State] = {}
        self.runs: dict[str, Run] = {}
        self.runs_by_namespace: dict[str, list[Run]] = {}
        self.run_states: dict[str, list[State]] = {}
        self.run_counts: dict[str, dict[str, int]] = {}
        self.store_values: dict[str, dict[str, str]] = {}
        self.nodes: dict[str, dict[str, dict[str, Any]]] = {}
        self.graphs: dict[tuple[str, str], GraphTemplate] = {}
        self.cron: dict[str, CronDoc] = {}
        self._ready: dict[tuple[str, str], OrderedDict[str, State]] = {}
        self._delayed: list[tuple[int, int, State]] = []
        self._descendants: dict[tuple[str, str], dict[str, int]] = {}
        self._fingerprints: set[str] = set()
        self._unique: set[tuple[str, str, str, str, str, int, str]] = set()

    # -- ids --------------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh 24-hex ObjectId-like id (§1.1): a per-store random prefix and a counter."""
        return f"{self._id_prefix}{next(self._ids):016x}"

    def next_seq(self) -> int:
        """A fresh creation-order number."""
        return next(self._ids)

    # -- states -----------------------------------------------------------------------------------

    def insert_state(self, state: State, now_ms: int) -> None:
        """Add a state and index it; raise :class:`DuplicateKeyError` if a unique index clashes."""
        key = state.unique_key()
        if key in self._unique:
            raise DuplicateKeyError(f"duplicate state key {key!r}")
        if state.does_unites and state.state_fingerprint:
            if state.state_fingerprint in self._fingerprints:
                raise DuplicateKeyError("duplicate unite state fingerprint")
            self._fingerprints.add(state.state_fingerprint)
        self._unique.add(key)
        self.states[state.id] = state
        self.run_states.setdefault(state.run_id, []).append(state)
        self._count(state, state.status, +1)
        if state.status == CREATED:
            self._schedule(state, now_ms)

    def set_status(self, state: State, status: str) -> None:
        """Change a state's status, keeping counters and the claim indexes in step."""
        if status == CREATED:
            raise ValueError("use set_created() to make a state CREATED again")
        if state.status == status:
            return
        if state.status == CREATED:
            self._unschedule(state)
        self._count(state, state.status, -1)
        state.status = status
        self._count(state, status, +1)

    def set_created(self, state: State, enqueue_after: int, now_ms: int) -> None:
        """Make a state CREATED (again) with a new ``enqueue_after`` (§6.2)."""
        if state.status == CREATED:
            self._unschedule(state)
        else:
            self._count(state, state.status, -1)
            state.status = CREATED
            self._count(state, CREATED, +1)
        state.enqueue_after = enqueue_after
        self._schedule(state, now_ms)

    def claim(
        self, namespace: str, node_names: Iterable[str], limit: int, now_ms: int
    ) -> list[State]:
        """Claim up to ``limit`` due CREATED states (oldest first) and mark them QUEUED (§3.3)."""
        if limit <= 0:
            return []
        self.promote_due(now_ms)
        queues = [
            (key, queue)
            for name in dict.fromkeys(node_names)
            if (queue := self._ready.get(key := (namespace, name)))
        ]
        claimed: list[State] = []
        while queues and len(claimed) < limit:
            # Oldest head across the asked-for node names: O(len(node_names)) per claim.
            best = min(queues, key=lambda item: next(iter(item[1].values())).seq)
            _, state = best[1].popitem(last=False)
            if not best[1]:
                queues.remove(best)
                del self._ready[best[0]]
            self._count(state, CREATED, -1)
            state.status = QUEUED
            self._count(state, QUEUED, +1)
            claimed.append(state)
        return claimed

    def promote_due(self, now_ms: int) -> None:
        """Move delayed states whose time has come to the ready queues."""
        heap = self._delayed
        while heap and heap[0][0] <= now_ms:
            _, token, state = heapq.heappop(heap)
            if state.heap_token == token:
                state.heap_token = 0
                self._ready.setdefault((state.namespace_name, state.node_name), OrderedDict())[
                    state.id
                ] = state

    def next_due_ms(self) -> int | None:
        """The earliest ``enqueue_after`` of a delayed CREATED state (stale entries dropped)."""
        heap = self._delayed
        while heap and heap[0][2].heap_token != heap[0][1]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def descendant_counts(self, ancestor_id: str, namespace: str) -> dict[str, int]:
        """Status counts of the states in ``namespace`` with ``ancestor_id`` in their parents."""
        return self._descendants.get((ancestor_id, namespace), {})

    def iter_ready(self) -> Iterator[State]:
        """Every state currently in a ready queue (for invariant checks)."""
        for queue in self._ready.values():
            yield from queue.values()

    def _schedule(self, state: State, now_ms: int) -> None:
        if state.enqueue_after <= now_ms:
            self._ready.setdefault((state.namespace_name, state.node_name), OrderedDict())[
                state.id
            ] = state
        else:
            token = next(self._tokens)
            state.heap_token = token
            heapq.heappush(self._delayed, (state.enqueue_after, token, state))

    def _unschedule(self, state: State) -> None:
        if state.heap_token:
            state.heap_token = 0  # its heap entry is now stale
            return
        queue = self._ready.get((state.namespace_name, state.node_name))
        if queue is not None:
            queue.pop(state.id, None)
            if not queue:
                del self._ready[(state.namespace_name, state.node_name)]

    def _count(self, state: State, status: str, delta: int) -> None:
        counts = self.run_counts.setdefault(state.run_id, {})
        counts[status] = counts.get(status, 0) + delta
        for ancestor in state.parents.values():
            desc = self._descendants.setdefault((ancestor, state.namespace_name), {})
            desc[status] = desc.get(status, 0) + delta

    # -- runs -------------------------------------------------------------------------------------

    def insert_run(self, run: Run) -> None:
        """Add a run document (§4.6 step 5)."""
        self.runs[run.run_id] = run
        self.runs_by_namespace.setdefault(run.namespace_name, []).append(run)


def check_invariants(store: Store) -> None:
    """Raise ``AssertionError`` unless every index of ``store`` agrees with its states.

    Checks: ready queues and the delayed heap hold exactly the CREATED states, none twice, each
    under its own (namespace, node name); per-run lists and counters and per-ancestor counters
    match a recount; the unique indexes hold exactly the stored keys.
    """
    ready_ids: list[str] = []
    for (namespace, node_name), queue in store._ready.items():
        assert queue, f"empty ready queue left for {(namespace, node_name)!r}"
        for state_id, state in queue.items():
            assert state.id == state_id
            assert store.states.get(state_id) is state, f"ready state {state_id} is not stored"
            assert state.status == CREATED, f"ready state {state_id} is {state.status}"
            assert (state.namespace_name, state.node_name) == (namespace, node_name)
            assert state.heap_token == 0, f"state {state_id} is both ready and delayed"
            ready_ids.append(state_id)
    assert len(ready_ids) == len(set(ready_ids)), "a state is claimable twice"
    delayed_ids = [state.id for _, token, state in store._delayed if state.heap_token == token]
    assert len(delayed_ids) == len(set(delayed_ids)), "a state is delayed twice"
    created = {s.id for s in store.states.values() if s.status == CREATED}
    assert set(ready_ids) | set(delayed_ids) == created, "claim indexes disagree with CREATED"
    assert not set(ready_ids) & set(delayed_ids)
    for state in store.states.values():
        if state.heap_token:
            assert state.status == CREATED, f"non-CREATED state {state.id} has a heap entry"
    # Per-run lists and counters.
    by_run: dict[str, list[str]] = {}
    for state in store.states.values():
        by_run.setdefault(state.run_id, []).append(state.id)
    assert {r: [s.id for s in ss] for r, ss in store.run_states.items() if ss} == by_run
    for run_id, states in store.run_states.items():
        recount: dict[str, int] = {}
        for state in states:
            recount[state.status] = recount.get(state.status, 0) + 1
        counted = {k: v for k, v in store.run_counts.get(run_id, {}).items() if v}
        assert counted == recount, f"run {run_id} counters {counted} != {recount}"
    descendants: dict[tuple[str, str], dict[str, int]] = {}
    for state in store.states.values():
        for ancestor in state.parents.values():
            desc = descendants.setdefault((ancestor, state.namespace_name), {})
            desc[state.status] = desc.get(state.status, 0) + 1
    stored_desc = {
        key: nonzero
        for key, counts in store._descendants.items()
        if (nonzero := {k: v for k, v in counts.items() if v})
    }
    assert stored_desc == descendants, "descendant counters disagree with the states"
    assert store._unique == {s.unique_key() for s in store.states.values()}
    fingerprints = {
        s.state_fingerprint for s in store.states.values() if s.does_unites and s.state_fingerprint
    }
    assert store._fingerprints == fingerprints, "fingerprint index disagrees with the states"
    for run_id in store.run_states:
        assert run_id in store.runs, f"states of unknown run {run_id}"

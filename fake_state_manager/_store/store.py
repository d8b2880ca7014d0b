"""The fake state manager's in-memory store: plain data plus the indexes the engine needs.

Every collection of contract §3.1 lives here (states, runs, store values, registered nodes, graph
templates, cron trigger docs), with indexes chosen so that no request's cost grows with history:

- ``_ready[(namespace, node_name)]``: CREATED states whose ``enqueue_after`` has passed, in the
  order they became claimable (an ``OrderedDict`` used as an ordered set: O(1) pop from the
  front, O(1) removal by id). Enqueue pops from here: O(batch).
- ``_delayed``: a heap of ``(enqueue_after, token, state)`` for CREATED states not yet due. Stale
  entries (the state changed since) are skipped lazily by token; due entries are promoted to
  ``_ready`` when an enqueue or ``next_due_ms`` looks at the heap.
- per-run list of states and per-run status counters (runs list, §7.1);
- per-ancestor status counters (``parents`` values) for unite readiness (§3.5 step 4b);
- the two unique indexes of §3.1 (unite fingerprint; the 7-tuple) as sets;
- ``graphs_by_namespace``: the templates of each namespace (list-graphs, §2.5, without a scan of
  every namespace's templates), kept in step by :meth:`Store.put_graph`;
- ``_leases``, only with a lease (``Engine(queued_timeout=...)``, an addition): a heap of
  ``(deadline_ms, token, queued_at, state)``, one entry per claim. An entry is current while its
  state is still QUEUED from that claim (``state.queued_at == queued_at``); stale ones are skipped
  lazily, like ``_delayed``'s. Claims push in O(log n); the in-memory default pushes nothing.

Finished runs can be dropped whole (:meth:`Store.drop_run`, for ``retain_runs`` /
``retain_hours``): their states, counters, unique keys and store values go with them.

The documents themselves (``State``, ``Run``, ``GraphTemplate``, ``CronDoc``) and the status
names are defined in :mod:`.documents`.

All mutation of a state's ``status`` / ``enqueue_after`` goes through :meth:`Store.set_status`
and :meth:`Store.set_created`, which keep the indexes in step. :func:`check_invariants` re-derives
every index from the states and compares; tests and fuzzers call it.

The ``note_*`` methods are no-ops here. They tell a persistent subclass
(:class:`fake_state_manager._store.sqlite.JournaledStore`, ``--db``) which documents an engine call
changed, so that it writes only those, once, at the end of the call. The in-memory store pays
nothing on its hot path: the state methods are overridden there, not hooked here. Engine code
that changes a registered node, a graph template or a cron doc outside these methods calls the
matching ``note_*``; a state or run changed in place is always one that went through a store
method in the same engine call.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import os
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any

from fake_state_manager._errors import DuplicateKeyError
from fake_state_manager._store.documents import (
    CREATED,
    QUEUED,
    CronDoc,
    GraphTemplate,
    Run,
    State,
)

__all__ = ["Store", "check_invariants"]


class Store:
    """Plain in-memory collections with the indexes described in the module docstring.

    The store knows nothing about the contract's rules; it only keeps data and indexes
    consistent. It is not thread-safe on its own: the engine serialises access.
    """

    def __init__(self, *, id_prefix: int | None = None, first_id: int = 1) -> None:
        prefix = id_prefix if id_prefix is not None else int.from_bytes(os.urandom(4), "big")
        self._id_prefix = f"{prefix & 0xFFFFFFFF:08x}"
        self._ids = itertools.count(first_id)  # a reloaded store continues its counter
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
        self.graphs_by_namespace: dict[str, dict[str, GraphTemplate]] = {}
        self._lease_ms = 0  # 0: no lease (upstream behaviour)
        self._leases: list[tuple[int, int, int, State]] = []
        #: Bumped by every push on a heap of wake-up times (delayed states, leases, cron docs):
        #: only a push can make the earliest one earlier (see :meth:`Engine.schedule_mark`).
        self.schedule_pushes = 0

    # -- ids --------------------------------------------------------------------------------------

    def new_id(self) -> str:
        """A fresh 24-hex ObjectId-like id (§1.1): a per-store random prefix and a counter."""
        return f"{self._id_prefix}{next(self._ids):016x}"

    def next_seq(self) -> int:
        """A fresh creation-order number."""
        return next(self._ids)

    def new_state(
        self,
        *,
        node_name: str,
        namespace_name: str,
        identifier: str,
        graph_name: str,
        run_id: str,
        inputs: dict[str, Any],
        parents: dict[str, str],
        enqueue_after: int,
        now: float,
        status: str = CREATED,
        does_unites: bool = False,
    ) -> State:
        """A new state document (not yet inserted): fresh id, order and ``fanout_id`` (§3.1)."""
        return State(
            id=self.new_id(),
            seq=self.next_seq(),
            node_name=node_name,
            namespace_name=namespace_name,
            identifier=identifier,
            graph_name=graph_name,
            run_id=run_id,
            status=status,
            inputs=inputs,
            parents=parents,
            enqueue_after=enqueue_after,
            fanout_id=str(uuid.uuid4()),
            created_at=now,
            updated_at=now,
            does_unites=does_unites,
        )

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
        self._move(state, state.status, status)
        state.status = status

    def set_created(self, state: State, enqueue_after: int, now_ms: int) -> None:
        """Make a state CREATED (again) with a new ``enqueue_after`` (§6.2)."""
        if state.status == CREATED:
            self._unschedule(state)
        else:
            self._move(state, state.status, CREATED)
            state.status = CREATED
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
        lease_ms = self._lease_ms
        while queues and len(claimed) < limit:
            # Oldest head across the asked-for node names: O(len(node_names)) per claim.
            best = min(queues, key=lambda item: next(iter(item[1].values())).seq)
            _, state = best[1].popitem(last=False)
            if not best[1]:
                queues.remove(best)
                del self._ready[best[0]]
            self._move(state, CREATED, QUEUED)
            state.status = QUEUED
            state.queued_at = now_ms
            if lease_ms:
                heapq.heappush(
                    self._leases, (now_ms + lease_ms, next(self._tokens), now_ms, state)
                )
                self.schedule_pushes += 1
            claimed.append(state)
        return claimed

    # -- leases (``queued_timeout``) ----------------------------------------------------------

    def enable_leases(self, lease_ms: int, now_ms: int) -> None:
        """Give every claim a lease of ``lease_ms`` (> 0), QUEUED states already stored included.

        A stored QUEUED state's lease runs from its ``queued_at`` (a reloaded store keeps it), or
        from ``now_ms`` when it has none. O(states) once; each later claim is O(log n).
        """
        if lease_ms <= 0:
            raise ValueError(f"a lease must be > 0 ms, got {lease_ms}")
        self._lease_ms = lease_ms
        self._leases = []
        for state in self.states.values():
            if state.status == QUEUED:
                start = state.queued_at or now_ms
                self._leases.append((start + lease_ms, next(self._tokens), state.queued_at, state))
        heapq.heapify(self._leases)
        self.schedule_pushes += 1

    def _lease_current(self, entry: tuple[int, int, int, State]) -> bool:
        state = entry[3]
        return (
            state.status == QUEUED
            and state.queued_at == entry[2]
            and self.states.get(state.id) is state
        )

    def pop_expired_leases(self, now_ms: int) -> list[State]:
        """The QUEUED states whose lease ended at or before ``now_ms``, oldest deadline first.

        Their entries leave the heap; the caller changes their status (else they are not
        leased any more).
        """
        heap = self._leases
        expired: list[State] = []
        while heap and heap[0][0] <= now_ms:
            entry = heapq.heappop(heap)
            if self._lease_current(entry):
                expired.append(entry[3])
        return expired

    def next_lease_ms(self) -> int | None:
        """The earliest deadline of a current lease (stale entries dropped), or ``None``."""
        heap = self._leases
        while heap and not self._lease_current(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

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
            self.schedule_pushes += 1

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

    def _move(self, state: State, old: str, new: str) -> None:
        # _count(old, -1) then _count(new, +1) in one pass: every report moves one state.
        counts = self.run_counts.setdefault(state.run_id, {})
        counts[old] = counts.get(old, 0) - 1
        counts[new] = counts.get(new, 0) + 1
        if state.parents:
            namespace = state.namespace_name
            descendants = self._descendants
            for ancestor in state.parents.values():
                desc = descendants.setdefault((ancestor, namespace), {})
                desc[old] = desc.get(old, 0) - 1
                desc[new] = desc.get(new, 0) + 1

    # -- runs -------------------------------------------------------------------------------------

    def insert_run(self, run: Run) -> None:
        """Add a run document (§4.6 step 5)."""
        self.runs[run.run_id] = run
        self.runs_by_namespace.setdefault(run.namespace_name, []).append(run)

    def drop_run(self, run_id: str) -> int:
        """Remove a run with every one of its states and its store values; return the states.

        For finished runs (``retain_runs`` / ``retain_hours``): every index forgets them, and a
        persistent store deletes their rows. O(states of the run + parents), plus a bisect and
        a pointer move in the namespace's run list.
        """
        run = self.runs.pop(run_id, None)
        if run is None:
            return 0
        states = self.run_states.pop(run_id, [])
        emptied: set[tuple[str, str]] = set()
        for state in states:
            if state.status == CREATED:
                self._unschedule(state)
            self._count(state, state.status, -1)
            for ancestor in state.parents.values():
                emptied.add((ancestor, state.namespace_name))
            del self.states[state.id]
            self._unique.discard(state.unique_key())
            if state.does_unites and state.state_fingerprint:
                self._fingerprints.discard(state.state_fingerprint)
            self.note_state(state)
        for key in emptied:  # descendants share their ancestors' run: all counters are 0 now
            counts = self._descendants.get(key)
            if counts is not None and not any(counts.values()):
                del self._descendants[key]
        self.run_counts.pop(run_id, None)
        self.store_values.pop(run_id, None)
        runs = self.runs_by_namespace.get(run.namespace_name, [])
        index = bisect.bisect_left(runs, run.seq, key=_run_seq)  # creation (seq) order
        if index < len(runs) and runs[index] is run:
            del runs[index]
        else:  # not in seq order (never expected): a scan
            runs[:] = [r for r in runs if r is not run]
        if not runs:
            self.runs_by_namespace.pop(run.namespace_name, None)
        self.note_run(run_id)
        return len(states)

    # -- graph templates --------------------------------------------------------------------------

    def put_graph(self, template: GraphTemplate) -> None:
        """Store (insert or replace) a template under its namespace and name."""
        self.graphs[(template.namespace, template.name)] = template
        self.graphs_by_namespace.setdefault(template.namespace, {})[template.name] = template

    # -- change notes (no-ops in memory; see the module docstring) --------------------------------

    def note_state(self, state: State) -> None:
        """``state`` was inserted, changed or (when no longer in :attr:`states`) removed."""

    def note_run(self, run_id: str) -> None:
        """The run ``run_id`` (or its store values) was inserted, changed or removed."""

    def note_node(self, namespace: str, name: str) -> None:
        """The registered node ``name`` of ``namespace`` was inserted, changed or removed."""

    def note_graph(self, namespace: str, name: str) -> None:
        """The graph template ``(namespace, name)`` was inserted, changed or removed."""

    def note_cron(self, doc_id: str) -> None:
        """The cron doc ``doc_id`` was inserted, changed or removed from :attr:`cron`."""


def _run_seq(run: Run) -> int:
    return run.seq


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
    listed = [run.run_id for runs in store.runs_by_namespace.values() for run in runs]
    assert sorted(listed) == sorted(store.runs), "runs_by_namespace disagrees with the runs"
    for runs in store.runs_by_namespace.values():
        assert runs, "empty run list left for a namespace"
        assert all(a.seq < b.seq for a, b in itertools.pairwise(runs)), "runs out of order"
    assert set(store.store_values) <= set(store.runs), "store values of an unknown run"
    by_namespace = {
        (namespace, name): template
        for namespace, templates in store.graphs_by_namespace.items()
        for name, template in templates.items()
    }
    assert by_namespace == store.graphs, "graphs_by_namespace disagrees with the graphs"
    assert all(store.graphs_by_namespace.values()), "empty graph index left for a namespace"
    for (namespace, name), template in store.graphs.items():
        assert (template.namespace, template.name) == (namespace, name)
    if store._lease_ms:
        leased = [e[3].id for e in store._leases if store._lease_current(e)]
        queued = {s.id for s in store.states.values() if s.status == QUEUED}
        assert set(leased) == queued, "leases disagree with the QUEUED states"

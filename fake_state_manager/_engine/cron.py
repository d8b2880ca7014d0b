"""Cron trigger documents and their schedule (contract §4.7 ``DatabaseTriggers``).

The docs live in ``Store.cron`` (by id); :class:`CronSchedule` adds a heap of PENDING docs by
``trigger_time``, the PENDING docs of each (namespace, graph), and the finished docs in expiry
order, so that firing, re-upserting and expiring never scan the (growing) history of fired docs,
and re-upserting one graph never looks at the other graphs' docs (a deploy re-upserting K graphs
costs O(K), not O(K²)).
:meth:`CronSchedule.fire_due` walks the due docs; the engine supplies the trigger call.
"""

from __future__ import annotations

import heapq
import logging
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from fake_state_manager._graph.cron import next_fire
from fake_state_manager._store.documents import CronDoc
from fake_state_manager._store.store import Store

__all__ = ["CronSchedule", "expressions"]

logger = logging.getLogger("fake_state_manager")


def expressions(triggers: Sequence[Mapping[str, Any]]) -> list[str]:
    """The distinct cron expressions of a template's triggers, in order (§4.7)."""
    found: dict[str, None] = {}
    for trigger in triggers:
        value = trigger.get("value") or {}
        if trigger.get("type", "CRON") == "CRON" and isinstance(value.get("expression"), str):
            found[value["expression"]] = None
    return list(found)


class CronSchedule:
    """The PENDING cron docs of a store, ordered by trigger time."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._heap: list[tuple[float, int, CronDoc]] = []
        # (namespace, graph name) -> {doc id: PENDING doc}; no empty inner dicts are kept.
        self._pending: dict[tuple[str, str], dict[str, CronDoc]] = {}
        self._finished: deque[CronDoc] = deque()  # expires_at is non-decreasing along it
        # A store reloaded from a database (``--db``) already holds docs: index them.
        finished = []
        for doc in store.cron.values():
            if doc.trigger_status == "PENDING":
                self._pending.setdefault((doc.namespace, doc.graph_name), {})[doc.id] = doc
                heapq.heappush(self._heap, (doc.trigger_time, store.next_seq(), doc))
            elif doc.expires_at is not None:
                finished.append(doc)
        self._finished.extend(sorted(finished, key=lambda doc: doc.expires_at or 0.0))
        store.schedule_pushes += 1

    def schedule(
        self, triggers: Sequence[Mapping[str, Any]], graph_name: str, namespace: str, now: float
    ) -> None:
        """§4.7 "On VALID": one PENDING doc per distinct expression at its next fire after now.

        Raises:
            ValueError: an expression croniter cannot use (nothing is scheduled then).
        """
        times = [(e, next_fire(e, now)) for e in expressions(triggers)]
        for expression, when in times:
            self.add(expression, graph_name, namespace, when)

    def add(self, expression: str, graph_name: str, namespace: str, when: float) -> CronDoc:
        """Insert one PENDING doc due at ``when``."""
        doc = CronDoc(self._store.new_id(), expression, graph_name, namespace, when)
        self._store.cron[doc.id] = doc
        self._store.note_cron(doc.id)
        self._pending.setdefault((namespace, graph_name), {})[doc.id] = doc
        heapq.heappush(self._heap, (when, self._store.next_seq(), doc))
        self._store.schedule_pushes += 1
        return doc

    def drop_pending(self, namespace: str, graph_name: str, dropped: Sequence[str]) -> None:
        """Delete PENDING docs of a graph's old expressions (§4.7, on upsert of an existing graph).

        Upstream's filter omits the namespace; the fake includes it (docs/fidelity.md).
        O(this graph's PENDING docs).
        """
        key = (namespace, graph_name)
        pending = self._pending.get(key)
        if not pending:
            return
        for doc_id, doc in list(pending.items()):
            if doc.expression in dropped:
                doc.trigger_status = "CANCELLED"  # its heap entry is now stale
                del pending[doc_id]
                del self._store.cron[doc_id]
                self._store.note_cron(doc_id)
        if not pending:
            del self._pending[key]

    def pop_due(self, now: float) -> Iterator[CronDoc]:
        """PENDING docs with ``trigger_time <= now``, oldest first; docs added meanwhile count."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, doc = heapq.heappop(heap)
            if doc.trigger_status == "PENDING":
                self._forget(doc)
                yield doc

    def fire_due(self, now: float, fire: Callable[[CronDoc], bool], retention: float) -> int:
        """Fire every PENDING doc due at ``now`` and schedule each one's next occurrence (§4.7).

        ``fire(doc)`` triggers the graph and says whether it worked: the doc becomes TRIGGERED
        or FAILED, kept for ``retention`` seconds. The next occurrence after the fired one is
        added; one already past is fired in this same pass (upstream's catch-up burst). An
        expression that never fires again (e.g. a past year) is logged and dropped instead of
        failing the request that ran this. Returns the number of trigger attempts made.
        """
        fired = 0
        for doc in self.pop_due(now):
            doc.trigger_status = "TRIGGERING"
            status = "TRIGGERED" if fire(doc) else "FAILED"
            self.finish(doc, status, now + retention)
            fired += 1
            try:
                when = next_fire(doc.expression, doc.trigger_time)
            except ValueError as exc:
                # Upstream's scheduler job raises and logs here; nothing is scheduled.
                logger.warning(
                    "cron trigger %r of graph %s in namespace %s will not fire again: %s",
                    doc.expression,
                    doc.graph_name,
                    doc.namespace,
                    exc,
                )
                continue
            self.add(doc.expression, doc.graph_name, doc.namespace, when)
        self.expire(now)
        return fired

    def _forget(self, doc: CronDoc) -> None:
        key = (doc.namespace, doc.graph_name)
        pending = self._pending[key]
        del pending[doc.id]
        if not pending:
            del self._pending[key]

    def pending(self) -> Iterator[CronDoc]:
        """Every PENDING doc (for invariant checks and inspection)."""
        for docs in self._pending.values():
            yield from docs.values()

    def check(self) -> None:
        """Raise ``AssertionError`` unless the PENDING index holds exactly the PENDING docs."""
        indexed = {}
        for (namespace, graph_name), docs in self._pending.items():
            assert docs, f"empty PENDING cron index left for {(namespace, graph_name)!r}"
            for doc_id, doc in docs.items():
                assert (doc.namespace, doc.graph_name, doc.id) == (namespace, graph_name, doc_id)
                indexed[doc_id] = doc
        stored = {i: d for i, d in self._store.cron.items() if d.trigger_status == "PENDING"}
        assert indexed == stored, "the PENDING cron index disagrees with the cron docs"

    def next_due(self) -> float | None:
        """The earliest PENDING trigger time, or ``None``."""
        heap = self._heap
        while heap and heap[0][2].trigger_status != "PENDING":
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def finish(self, doc: CronDoc, status: str, expires_at: float) -> None:
        """Record a fired doc as TRIGGERED or FAILED, kept until ``expires_at``."""
        doc.trigger_status = status
        doc.expires_at = expires_at
        self._finished.append(doc)
        self._store.note_cron(doc.id)

    def expire(self, now: float) -> None:
        """Drop finished docs whose retention has passed (upstream's TTL index)."""
        finished = self._finished
        while finished and finished[0].expires_at is not None and finished[0].expires_at <= now:
            doc_id = finished.popleft().id
            if self._store.cron.pop(doc_id, None) is not None:
                self._store.note_cron(doc_id)

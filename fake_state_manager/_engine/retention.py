"""Dropping old finished runs: ``retain_runs`` / ``retain_hours`` (an addition, off by default).

Upstream keeps every run and state forever; so does the fake unless told otherwise. With a bound,
the engine drops the runs that **finished** earliest once more than ``retain_runs`` finished runs
are stored, or once a run finished more than ``retain_hours`` ago. A run is finished when none of
its states is CREATED, QUEUED or EXECUTED (its §7.1 status is not PENDING); a PENDING run is never
dropped, and a finished run that becomes PENDING again (manual retry, re-enqueue-after) leaves
the finished order until it finishes again.

How it stays cheap. Only a report (executed, errored, prune, re-enqueue-after, manual retry, a
lease that ran out) can finish a run or make a finished run PENDING again, and each concerns one
run: the engine calls :meth:`RunRetention.touch` with that run after the call's change, which
reads the run's status counters (O(1)). Finished runs wait in a FIFO in the order they finished,
with a token per run so that an entry made stale by the run becoming PENDING is skipped when it
reaches the front. :meth:`RunRetention.sweep` runs before each engine call (and right after a
run finishes beyond the count bound) and drops from the front while a bound is exceeded, at most
:data:`DROP_BUDGET` states per sweep (always at least one run), so one call never pays for a
whole backlog: the cost is amortised over the calls that created those states. Without a
bound nothing here exists (``Engine.retention`` is ``None``).
"""

from __future__ import annotations

import itertools
from collections import deque

from fake_state_manager._store.documents import CREATED, EXECUTED, QUEUED
from fake_state_manager._store.store import Store

__all__ = ["DROP_BUDGET", "RunRetention"]

#: At most this many states are dropped by one engine call (a whole run at least).
DROP_BUDGET = 1_000


class RunRetention:
    """The finished runs of a store in finishing order, and the bounds that drop them.

    Args:
        store: the store whose runs are dropped (its finished runs are indexed at once).
        max_runs: keep at most this many finished runs (``None``: no count bound).
        max_age_s: drop a run this many seconds after it finished (``None``: no age bound).
    """

    def __init__(self, store: Store, *, max_runs: int | None, max_age_s: float | None) -> None:
        if max_runs is None and max_age_s is None:
            raise ValueError("RunRetention needs max_runs or max_age_s")
        if max_runs is not None and max_runs < 0:
            raise ValueError(f"retain_runs must be >= 0, got {max_runs}")
        if max_age_s is not None and not max_age_s > 0:
            raise ValueError(f"retain_hours must be > 0, got {max_age_s / 3600}")
        self.max_runs = max_runs
        self.max_age_s = max_age_s
        self._store = store
        self._tokens = itertools.count(1)
        self._finished: dict[str, int] = {}  # run id -> token of its current FIFO entry
        self._order: deque[tuple[float, int, str]] = deque()  # (finished at, token, run id)
        self.dropped_runs = 0
        self.dropped_states = 0
        # A store loaded from a database already holds finished runs: a run finished when its
        # last state changed. O(states) once, at start.
        found = []
        for run_id, run in store.runs.items():
            if self._is_finished(run_id):
                states = store.run_states.get(run_id, [])
                finished_at = max((s.updated_at for s in states), default=run.created_at)
                found.append((finished_at, run.seq, run_id))
        for finished_at, _, run_id in sorted(found):
            self._enter(run_id, finished_at)

    def _is_finished(self, run_id: str) -> bool:
        counts = self._store.run_counts.get(run_id, {})
        return not (counts.get(CREATED, 0) or counts.get(QUEUED, 0) or counts.get(EXECUTED, 0))

    def _enter(self, run_id: str, now: float) -> None:
        token = next(self._tokens)
        self._finished[run_id] = token
        self._order.append((now, token, run_id))

    def touch(self, run_id: str, now: float) -> None:
        """A report changed ``run_id`` at ``now``: note whether it is finished now.

        O(1), plus the drop of the earliest-finished run when this one exceeds the count bound.
        """
        if run_id not in self._store.runs:
            return
        if self._is_finished(run_id):
            if run_id not in self._finished:
                self._enter(run_id, now)
                if self.max_runs is not None and len(self._finished) > self.max_runs:
                    self.sweep(now)  # the count bound holds after this call too
        else:
            self._finished.pop(run_id, None)  # its FIFO entry is stale now

    def sweep(self, now: float) -> int:
        """Drop the earliest-finished runs while a bound is exceeded; return the states dropped.

        At most :data:`DROP_BUDGET` states (and always whole runs, one at least) per call.
        """
        order, finished = self._order, self._finished
        max_runs, max_age = self.max_runs, self.max_age_s
        dropped = 0
        while order:
            finished_at, token, run_id = order[0]
            if finished.get(run_id) != token:
                order.popleft()  # the run became PENDING again (or was dropped) since
                continue
            over = max_runs is not None and len(finished) > max_runs
            old = max_age is not None and finished_at <= now - max_age
            if not (over or old) or dropped >= DROP_BUDGET:
                break
            order.popleft()
            del finished[run_id]
            dropped += self._store.drop_run(run_id)
            self.dropped_runs += 1
        self.dropped_states += dropped
        return dropped

    def finished_runs(self) -> int:
        """How many finished runs are stored (and not yet dropped)."""
        return len(self._finished)

    def check(self) -> None:
        """Raise ``AssertionError`` unless the finished index holds exactly the finished runs."""
        finished = {run_id for run_id in self._store.runs if self._is_finished(run_id)}
        assert set(self._finished) == finished, "the retention index disagrees with the runs"
        current = [run for _, token, run in self._order if self._finished.get(run) == token]
        assert sorted(current) == sorted(self._finished), "a finished run is not queued once"

"""Time as an injected dependency.

Everything in exo-ref that waits or stamps a time (poll spacing, backoffs, ``enqueue_after``,
retry delays, cron) goes through a :class:`Clock`, so that tests can replace wall-clock time with
a :class:`ManualClock` and a 2-4-8 s retry policy resolves in milliseconds. Both the runtime and the
fake state manager take a clock; give them the same one when they share a test.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol, runtime_checkable

import anyio
import anyio.lowlevel

__all__ = ["Clock", "ManualClock", "SystemClock", "hold_time"]

_SETTLE_CHECKPOINTS = 16
# anyio's asyncio wait_all_tasks_blocked() sleeps this long (real time) each time it finds a
# runnable task; a second call that returns sooner found every task blocked at once.
_BLOCKED_RECHECK = 0.1
# How many loop turns auto-advance waits for asyncio's queued callbacks to drain.
_MAX_QUEUE_TURNS = 1000


@runtime_checkable
class Clock(Protocol):
    """What exo-ref needs from time: a wall-clock reading and a way to wait."""

    def now(self) -> float:
        """Seconds since the Unix epoch (the state manager derives millisecond stamps from it)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time (at least one scheduling point, even for 0)."""
        ...


class SystemClock:
    """The real clock: :func:`time.time` and :func:`anyio.sleep`."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when told to, for deterministic tests.

    ``advance()`` moves time forward and wakes every sleeper whose deadline has come. With
    ``auto_advance=True`` (driven by :meth:`run_auto_advance`, which the fake state manager starts
    for you inside its async context), time jumps straight to the next due moment whenever every
    task is blocked: the next sleeper's deadline, or the earliest time reported by a wake-up source
    such as the fake's next delayed state or cron trigger. That makes a scenario with long delays
    run as fast as its CPU work, while keeping the order of events exactly as it would be in real
    time.
    """

    def __init__(self, start: float = 1_767_225_600.0, *, auto_advance: bool = False) -> None:
        if not math.isfinite(start):
            raise ValueError(f"ManualClock start must be a finite number of seconds, got {start!r}")
        self._now = float(start)
        self.auto_advance = auto_advance
        # Heap of [deadline, tie-breaker, event]; a cancelled sleeper's event slot becomes None so
        # that auto-advance never jumps to the deadline of a sleep nobody waits for any more.
        self._sleepers: list[list[Any]] = []
        self._counter = itertools.count()
        self._sources: list[Callable[[], float | None]] = []
        self._changed: anyio.Event | None = None
        self._holds = 0

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        entry: list[Any] = [self._now + seconds, next(self._counter), event]
        heapq.heappush(self._sleepers, entry)
        self._notify_change()
        try:
            await event.wait()
        finally:
            entry[2] = None

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake the sleepers that are now due."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards: advance() got {seconds!r}")
        self.advance_to(self._now + seconds)

    def advance_to(self, when: float) -> None:
        """Move time forward to ``when`` (no-op if it lies in the past)."""
        self._now = max(self._now, when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            event = heapq.heappop(self._sleepers)[2]
            if event is not None:
                event.set()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Keep auto-advance from moving time while work runs outside the event loop.

        Auto-advance jumps when every *task* is blocked, but a task awaiting a worker thread (a
        synchronous node's ``execute``) looks blocked while the thread is busy. Time must pass
        only when everything is idle, so the runtime holds the clock around such calls. Enter
        and leave it from the event loop's thread.
        """
        self._holds += 1
        try:
            yield
        finally:
            self._holds -= 1
            if not self._holds:
                self._notify_change()

    def add_wakeup_source(self, source: Callable[[], float | None]) -> None:
        """Register a function giving the next time (epoch seconds) something becomes due."""
        self._sources.append(source)
        self._notify_change()

    def next_due(self) -> float | None:
        """The earliest future moment a sleeper or a wake-up source is waiting for."""
        while self._sleepers and self._sleepers[0][2] is None:
            heapq.heappop(self._sleepers)
        candidates = [self._sleepers[0][0]] if self._sleepers else []
        for source in self._sources:
            due = source()
            if due is not None and due > self._now:
                candidates.append(due)
        return min(candidates) if candidates else None

    async def run_auto_advance(self) -> None:
        """Jump to the next due time whenever all other tasks are blocked; runs until cancelled."""
        while True:
            # Let tasks that are ready run first: anyio's asyncio implementation of
            # wait_all_tasks_blocked() sleeps 0.1 s of real time whenever it finds a runnable task.
            for _ in range(_SETTLE_CHECKPOINTS):
                await anyio.lowlevel.checkpoint()
            await _wait_until_idle()
            if not self.auto_advance or self._holds:
                await self._wait_for_change()
                continue
            due = self.next_due()
            if due is None:
                await self._wait_for_change()
                continue
            self.advance_to(due)
            await anyio.lowlevel.checkpoint()

    async def _wait_for_change(self) -> None:
        self._changed = anyio.Event()
        await self._changed.wait()

    def _notify_change(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def __repr__(self) -> str:
        return f"ManualClock(now={self._now!r}, auto_advance={self.auto_advance!r})"


async def _wait_until_idle() -> None:
    """Return once every other task is blocked and no loose callback is about to wake one.

    On asyncio, work can wait in the loop's queue outside any task: a task that ends leaves its
    parent's wake-up there for one more turn, and a callback may queue another before the last
    of them sets a future some task awaits. A check made meanwhile sees every task blocked
    although one is about to run, and time would jump under work still in progress. CPython's
    loop keeps that queue in ``_ready`` (no public API shows it): where it is visible, wait
    until it holds nothing live, for at most ``_MAX_QUEUE_TURNS`` turns, so that a callback
    which requeues itself forever cannot stop time for good. Where it is not (uvloop, or trio,
    which runs nothing outside tasks), check twice one loop turn apart, which covers the
    ended task; if the second check had to wait for a runnable task, look again.
    """
    turns = 0
    while True:
        await anyio.wait_all_tasks_blocked()  # each call first lets the loop run one turn
        queued = _callbacks_queued()
        if queued is not None:
            if not queued or turns >= _MAX_QUEUE_TURNS:
                return
            turns += 1
            continue
        started = time.monotonic()
        await anyio.wait_all_tasks_blocked()
        if time.monotonic() - started < _BLOCKED_RECHECK:
            return


def _callbacks_queued() -> bool | None:
    """Whether asyncio's loop has a live callback queued, or None where that is not visible."""
    ready = getattr(anyio.lowlevel.current_token().native_token, "_ready", None)
    if ready is None:
        return None
    return any(not handle.cancelled() for handle in ready)


def hold_time(clock: Clock) -> AbstractContextManager[None]:
    """The clock's ``hold()`` (see :meth:`ManualClock.hold`) if it has one, else nothing.

    Duck-typed so that wrappers around a manual clock (e.g. one that records sleeps) can pass
    the hold through by defining ``hold()`` themselves.
    """
    hold = getattr(clock, "hold", None)
    if callable(hold):
        held: AbstractContextManager[None] = hold()
        return held
    return nullcontext()

"""CPU time of the processes in a drain, over the drain's own window.

Why CPU time: on a shared 2-core machine the wall-clock states/s of a drain moves 2-4x with
other work, while the CPU a process spends per state barely moves. So every drain figure comes
with the CPU µs per state of the runtime's process (and of the loopback server's), and the
runtime targets are judged on those.

How: a :class:`CpuSampler` thread reads the CPU clocks of the watched processes every
millisecond (``clock_gettime`` on a process's CPU clock: nanoseconds, all its threads, on Linux;
``/proc/PID/stat`` ticks are only 10 ms), and :meth:`CpuSampler.between` interpolates the CPU
used between two moments of the real clock, the drain's window from the server's request log
(``_workload.drain_window``). Process start-up, registration and shutdown fall outside that
window, and every contender, in the benchmark process or in its own, is measured the same way.

In the benchmark process the sampler watches the main thread's CPU clock (the runtime's event
loop, and the harness's completion checks, which are a few per drain), never its own thread.
Where no CPU clock can be read (not Linux) the figures are ``None`` and the report says so.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

__all__ = ["CpuSampler", "load_average", "process_clock", "thread_clock"]

_CPUCLOCK_SCHED = 2  # the kernel's encoding of a process CPU clock id (posix-cpu-timers.h)


def process_clock(pid: int) -> Callable[[], float] | None:
    """A function returning ``pid``'s CPU seconds (all threads), or ``None`` if unreadable."""
    if pid == os.getpid():
        return time.process_time
    clock_id = ((~pid) << 3) | _CPUCLOCK_SCHED
    try:
        time.clock_gettime(clock_id)
    except (OSError, OverflowError):
        return None
    return lambda: time.clock_gettime(clock_id)


def thread_clock(thread: threading.Thread | None = None) -> Callable[[], float] | None:
    """A function returning ``thread``'s CPU seconds (default: the main thread), or ``None``."""
    ident = (thread or threading.main_thread()).ident
    getter = getattr(time, "pthread_getcpuclockid", None)
    if ident is None or getter is None:
        return None
    try:
        clock_id = getter(ident)
        time.clock_gettime(clock_id)
    except (OSError, OverflowError):
        return None
    return lambda: time.clock_gettime(clock_id)


def load_average() -> list[float] | None:
    try:
        return list(os.getloadavg())
    except OSError:
        return None


class CpuSampler:
    """Samples CPU clocks every ``interval`` seconds in a daemon thread, with the real time.

    Use as a context manager around the drain, then ask :meth:`between` for the CPU each clock
    used between two ``time.time()`` moments.
    """

    def __init__(self, clocks: dict[str, Callable[[], float] | None], interval: float = 0.001):
        self._clocks = {name: clock for name, clock in clocks.items() if clock is not None}
        self._missing = {name for name, clock in clocks.items() if clock is None}
        self._interval = interval
        self._times: list[float] = []
        self._samples: dict[str, list[float]] = {name: [] for name in self._clocks}
        self._dead: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-sampler", daemon=True)

    def __enter__(self) -> Self:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _sample(self) -> None:
        now = time.time()
        values = {}
        for name, clock in self._clocks.items():
            try:
                values[name] = clock()
            except OSError:  # the process has exited: keep its last value
                self._dead.add(name)
                values[name] = self._samples[name][-1] if self._samples[name] else 0.0
        self._times.append(now)
        for name, value in values.items():
            self._samples[name].append(value)

    def _at(self, name: str, moment: float) -> float:
        times, values = self._times, self._samples[name]
        i = bisect.bisect_left(times, moment)
        if i <= 0:
            return values[0]
        if i >= len(times):
            return values[-1]
        t0, t1 = times[i - 1], times[i]
        v0, v1 = values[i - 1], values[i]
        return v0 + (v1 - v0) * (moment - t0) / (t1 - t0) if t1 > t0 else v1

    def between(self, name: str, start: float, end: float) -> float | None:
        """CPU seconds ``name`` used from ``start`` to ``end`` (``time.time()``), or ``None``."""
        if name in self._missing or name not in self._samples or not self._times:
            return None
        return max(0.0, self._at(name, end) - self._at(name, start))

"""One ordered log of everything a conformance scenario observes.

Three sources write to the same :class:`EventLog`, so their events can be ordered against each
other by a single sequence number:

- :class:`RecordingTransport` wraps an httpx transport and records every exchange (method, path,
  request JSON, status, response JSON or the exception raised). A scenario stacks two of them:
  the *runtime* layer (what the runtime sent and saw) outside the fault transport, and the
  *server* layer (what reached the state manager and what it answered) inside it.
  (The black-box mode's :class:`~conformance._tap.ServerTap` records the same
  :class:`Exchange` on the server layer, so both modes classify requests one way.)
- the probe inside the generated nodes (:mod:`conformance._nodes`) records the start and end of
  each execution, possibly from worker threads (hence the lock);
- the harness records marks such as ``stop`` (when ``RuntimeHandle.stop()`` was called).

Times are read from the scenario's clock (virtual with a ManualClock, so spacings are exact).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx

from exo_ref import Clock, hold_time

__all__ = [
    "REPORT_KINDS",
    "TERMINAL_KINDS",
    "ClockSleep",
    "EventLog",
    "Exchange",
    "Execution",
    "Layer",
    "RecordingClock",
    "RecordingTransport",
    "parse_body",
    "request_kind",
]

Layer = Literal["runtime", "server"]
"""``runtime``: as the runtime saw it; ``server``: as it reached the state manager."""


#: The reports that end a state's claim (contract §2.8-2.10), and all reports (with §2.11).
TERMINAL_KINDS = frozenset({"executed", "errored", "prune"})
REPORT_KINDS = frozenset({*TERMINAL_KINDS, "re-enqueue-after"})


@dataclass
class Exchange:
    """One HTTP request and its outcome on one layer.

    Attributes:
        layer: where it was recorded (the black-box tap records on ``server``).
        method, path: as sent (no query string).
        request: the parsed JSON body, or its text, or None.
        sent_seq, sent_at: when it passed this layer (sequence number and clock time).
        done_seq, done_at: when its outcome (answer or error) passed this layer; None while in
            flight, and on the tap when the fake's app raised.
        status: the answer's status (None without an answer).
        response: the parsed JSON answer, or its text, or None.
        error: the exception's class name when the request raised instead of being answered.
        fault: the injected fault's name when the tap answered instead of the fake.
    """

    layer: Layer
    method: str
    path: str
    request: Any
    sent_seq: int
    sent_at: float
    done_seq: int | None = None
    done_at: float | None = None
    status: int | None = None
    response: Any = None
    error: str | None = None
    fault: str | None = None

    @property
    def forwarded(self) -> bool:
        """The state manager itself received it (no fault was answered in its place)."""
        return self.fault is None

    @property
    def ok(self) -> bool:
        """The state manager applied it: forwarded and answered 2xx on this layer."""
        return self.forwarded and self.status is not None and 200 <= self.status < 300

    @property
    def kind(self) -> str:
        """The runtime call this is (contract §8.3): register, enqueue, executed, errored, ..."""
        return request_kind(self.method, self.path)

    @property
    def state_id(self) -> str | None:
        """The state id in a ``/state/{id}/...`` path, else None."""
        parts = self.path.rstrip("/").split("/")
        if "state" in parts:
            index = parts.index("state")
            if index + 1 < len(parts):
                return parts[index + 1]
        return None

    def claimed(self) -> list[dict[str, Any]]:
        """The states a successful enqueue handed out (else empty)."""
        if self.kind != "enqueue" or not self.ok or not isinstance(self.response, dict):
            return []
        states = self.response.get("states")
        return [s for s in states if isinstance(s, dict)] if isinstance(states, list) else []

    def finish(
        self, seq: int, at: float, *, content: bytes = b"", error: str | None = None
    ) -> None:
        """Record the outcome: the answer's body (its status is set as it arrives) or an error."""
        self.done_seq, self.done_at = seq, at
        self.response = parse_body(content)
        self.error = error


@dataclass
class Execution:
    """One run of a generated node's ``execute`` (the probe's record)."""

    case: str
    attempt: int
    start_seq: int
    start_at: float
    end_seq: int | None = None
    end_at: float | None = None
    outcome: str | None = None


@dataclass
class ClockSleep:
    """One ``sleep`` the runtime made on the clock it was given."""

    seconds: float
    start_seq: int
    start_at: float
    end_seq: int | None = None


def parse_body(content: bytes) -> Any:
    """A body as recorded: its JSON, else its text (an HTML error page), or None when empty."""
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


def request_kind(method: str, path: str) -> str:
    """Classify a runtime request by its path suffix (contract §8.3)."""
    trimmed = path.rstrip("/")
    if method == "PUT" and trimmed.endswith("/nodes"):
        return "register"
    if trimmed.endswith("/states/enqueue"):
        return "enqueue"
    for suffix in ("executed", "errored", "prune", "re-enqueue-after", "secrets"):
        if trimmed.endswith("/" + suffix):
            return suffix
    return f"{method} {path}"


@dataclass
class EventLog:
    """The shared, ordered record of a scenario (thread-safe appends)."""

    clock: Clock
    exchanges: list[Exchange] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)
    marks: dict[str, int] = field(default_factory=dict)
    sleeps: list[ClockSleep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _changed: anyio.Event | None = None
    _loop_thread: int | None = None

    def next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def bind_loop(self) -> None:
        """Remember the event-loop thread, so notifications from other threads are skipped."""
        self._loop_thread = threading.get_ident()

    def notify(self) -> None:
        """Wake :meth:`wait_for` (only from the event-loop thread; threads are polled for)."""
        if threading.get_ident() != self._loop_thread:
            return
        if self._changed is not None:
            self._changed.set()

    def mark(self, name: str) -> int:
        seq = self.next_seq()
        self.marks[name] = seq
        self.notify()
        return seq

    def start_execution(self, case: str) -> Execution:
        with self._lock:
            attempt = 1 + sum(1 for e in self.executions if e.case == case)
            self._seq += 1
            execution = Execution(case, attempt, self._seq, self.clock.now())
            self.executions.append(execution)
        self.notify()
        return execution

    def end_execution(self, execution: Execution, outcome: str) -> None:
        with self._lock:
            self._seq += 1
            execution.end_seq = self._seq
            execution.end_at = self.clock.now()
            execution.outcome = outcome
        self.notify()

    def layer(self, layer: Layer, kind: str | None = None) -> list[Exchange]:
        """The exchanges of one layer (optionally of one kind), in sending order."""
        return [x for x in self.exchanges if x.layer == layer and (kind is None or x.kind == kind)]

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        *,
        virtual_deadline: float,
        real_timeout: float,
        settle_polls: int = 2,
        require_idle: bool = True,
        alarm: bool = False,
    ) -> bool:
        """Wait until ``predicate()`` holds; False once either deadline passes.

        The virtual deadline is on the scenario clock (it moves as the runtime idles under an
        auto-advancing ManualClock); the real one is a safety net against a wedged runtime. A
        short real-time re-check interval covers events recorded from worker threads.

        An auto-advancing ManualClock also jumps while a worker thread runs (every event-loop
        task looks blocked then), so the virtual deadline only counts once the runtime has
        completed ``settle_polls`` more polls after it and after its last activity (a claim, an
        execution, a report), no execution is in progress (unless
        ``require_idle`` is false), and a tenth of a real second has passed: a runtime still
        busy in a thread is not given up on, while an idle or stuck one keeps polling and is.
        Virtual time normally advances through the runtime's own sleeps (it keeps polling);
        ``alarm=True`` adds a sleeper at the deadline for waits where the runtime may not sleep
        at all. It is off by default because the clock would jump straight to a far deadline
        whenever a worker thread runs.
        """
        result = False
        deadline_seq: int | None = None
        deadline_real = 0.0
        with anyio.move_on_after(real_timeout):
            async with anyio.create_task_group() as tg:
                if alarm:
                    tg.start_soon(self._alarm, virtual_deadline)
                while True:
                    if predicate():
                        result = True
                        break
                    if self.clock.now() >= virtual_deadline:
                        if deadline_seq is None:
                            deadline_seq = self.next_seq()
                            deadline_real = anyio.current_time()
                        if self._settled(deadline_seq, settle_polls, require_idle) and (
                            anyio.current_time() - deadline_real >= _SETTLE_REAL_SECONDS
                        ):
                            break
                    self._changed = anyio.Event()
                    with anyio.move_on_after(0.02):
                        await self._changed.wait()
                tg.cancel_scope.cancel()
            return result
        return predicate()

    def _settled(self, since: int, polls: int, require_idle: bool) -> bool:
        """``polls`` polls completed after ``since`` and after the runtime's last activity."""
        since = max(since, self._last_activity())
        late = [
            x
            for x in self.layer("runtime", "enqueue")
            if x.sent_seq > since and x.done_seq is not None
        ]
        running = require_idle and any(e.end_seq is None for e in self.executions)
        return len(late) >= polls and not running

    def _last_activity(self) -> int:
        """The latest claim, report or execution event (an idle poll is no activity)."""
        last = 0
        for x in self.layer("runtime"):
            busy = x.kind not in ("enqueue", "register") or (
                isinstance(x.response, dict) and bool(x.response.get("states"))
            )
            if busy:
                last = max(last, x.done_seq or x.sent_seq)
        for e in self.executions:
            last = max(last, e.end_seq or e.start_seq)
        return last

    async def _alarm(self, when: float) -> None:
        await self.clock.sleep(max(0.0, when - self.clock.now()))
        if self._changed is not None:
            self._changed.set()


# Real time the deadline must have been passed before giving up (see EventLog.wait_for).
_SETTLE_REAL_SECONDS = 0.1

_ENCODING_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})


class RecordingTransport(httpx.AsyncBaseTransport):
    """Record every exchange passing through ``inner`` into ``log`` on ``layer``."""

    def __init__(self, inner: httpx.AsyncBaseTransport, log: EventLog, layer: Layer) -> None:
        self._inner = inner
        self._log = log
        self._layer: Layer = layer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        log = self._log
        body = parse_body(await request.aread())
        exchange = Exchange(
            self._layer, request.method, request.url.path, body, log.next_seq(), log.clock.now()
        )
        log.exchanges.append(exchange)
        try:
            response = await self._inner.handle_async_request(request)
            content = await response.aread()
        except BaseException as exc:
            exchange.finish(log.next_seq(), log.clock.now(), error=type(exc).__name__)
            log.notify()
            raise
        exchange.status = response.status_code
        exchange.finish(log.next_seq(), log.clock.now(), content=content)
        log.notify()
        # The content is already decoded: drop the headers that describe the wire encoding.
        headers = [
            (name, value)
            for name, value in response.headers.multi_items()
            if name.lower() not in _ENCODING_HEADERS
        ]
        return httpx.Response(response.status_code, headers=headers, content=content)

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordingClock:
    """A clock wrapper that records every ``sleep`` a runtime makes (for rule T2)."""

    def __init__(self, inner: Clock, log: EventLog) -> None:
        self._inner = inner
        self._log = log

    def now(self) -> float:
        return self._inner.now()

    def hold(self) -> AbstractContextManager[None]:
        """Pass the runtime's hold (no auto-advance while a sync node runs) to the real clock."""
        return hold_time(self._inner)

    async def sleep(self, seconds: float) -> None:
        record = ClockSleep(seconds, self._log.next_seq(), self._inner.now())
        self._log.sleeps.append(record)
        try:
            await self._inner.sleep(seconds)
        finally:
            record.end_seq = self._log.next_seq()

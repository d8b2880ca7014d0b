"""A tap around the state manager's ASGI app: every exchange with its answer, and scripted faults.

The black-box mode judges a runtime from the state manager's side. The fake's own request log
(``FakeStateManager.requests``) holds each request's time, body and status, but not the answer,
and a poll's answer is the only place that says which states it handed out (rule B2, B3). So the
suite serves the fake's app wrapped in a :class:`ServerTap`, which records each exchange with
the parsed answer on the fake's clock (an :class:`~conformance._recording.Exchange` on the
``server`` layer, as the injected mode records it), and which can answer a scripted request
itself with a fault (``503`` JSON, or a ``502`` HTML page as a proxy would send) instead of
passing it on: the runtime sees exactly that answer, and the fake never sees the request (rules
T3, E2, E3).

Only requests made after :meth:`ServerTap.arm` are recorded or faulted, so the suite's own
seeding (before the runtime starts) is neither. Appends happen on the server's thread; readers
take :meth:`ServerTap.snapshot` or wait with :meth:`ServerTap.wait_change` on a condition that
every exchange notifies, so nobody polls.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance._recording import Exchange, parse_body, request_kind

__all__ = ["FAULT_ANSWERS", "ServerTap"]

# The ASGI callable's shape (as starlette.types spells it; conformance does not need starlette).
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

#: What the tap answers for each fault it can inject: (status, content type, body).
FAULT_ANSWERS: Mapping[str, tuple[int, bytes, bytes]] = {
    "status_503": (
        503,
        b"application/json",
        b'{"detail": "injected fault: service unavailable"}',
    ),
    "status_502_html": (
        502,
        b"text/html",
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    ),
}


@dataclass
class _Script:
    """Per request kind, the faults for its first requests (None = pass it on)."""

    faults: Mapping[str, Sequence[str | None]] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=dict)

    def choose(self, kind: str) -> str | None:
        index = self.seen.get(kind, 0)
        self.seen[kind] = index + 1
        planned = self.faults.get(kind, ())
        return planned[index] if index < len(planned) else None


class ServerTap:
    """ASGI middleware: record every exchange once armed, answer scripted ones with faults."""

    def __init__(self, app: ASGIApp, now: Callable[[], float]) -> None:
        self.app = app
        self._now = now
        self._changed = threading.Condition()
        self._exchanges: list[Exchange] = []
        self._script: _Script | None = None
        self._version = 0
        self._seq = 0

    def arm(self, faults: Mapping[str, Sequence[str | None]] | None = None) -> None:
        """Start recording (and faulting per ``faults``: request kind -> fault names)."""
        for plan in (faults or {}).values():
            unknown = [f for f in plan if f is not None and f not in FAULT_ANSWERS]
            if unknown:
                raise ValueError(f"unknown faults {unknown}; known: {sorted(FAULT_ANSWERS)}")
        with self._changed:
            self._script = _Script(dict(faults or {}))

    def snapshot(self) -> list[Exchange]:
        """The exchanges recorded so far, in arrival order (a copy)."""
        with self._changed:
            return list(self._exchanges)

    @property
    def version(self) -> int:
        """Grows with every exchange that arrives or is answered."""
        with self._changed:
            return self._version

    def wait_change(self, version: int, timeout: float) -> int:
        """Wait until :attr:`version` passes ``version`` or ``timeout`` seconds pass; return it.

        The predicate callers test runs outside the lock: it may read the fake's engine.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._version != version, timeout)
            return self._version

    def _next_seq(self) -> int:
        with self._changed:
            self._seq += 1
            return self._seq

    def _add(self, exchange: Exchange, answer: bytes | None = None) -> None:
        """Log an arrived exchange (with its ``answer`` when the tap gave it, as for a fault)."""
        with self._changed:
            exchange.sent_seq = self._next_seq()
            if answer is not None:
                self._answer(exchange, answer)
            self._exchanges.append(exchange)
            self._version += 1
            self._changed.notify_all()

    def _answer(self, exchange: Exchange, content: bytes) -> None:
        exchange.finish(self._next_seq(), self._now(), content=content)

    def _finish(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        script = self._script
        if scope["type"] != "http" or script is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        method, path = scope["method"], scope["path"]
        exchange = Exchange("server", method, path, parse_body(body), -1, self._now())
        with self._changed:
            fault = script.choose(request_kind(method, path))
        if fault is not None:
            status, content_type, content = FAULT_ANSWERS[fault]
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [
                        (b"content-type", content_type),
                        (b"content-length", str(len(content)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": content})
            exchange.fault, exchange.status = fault, status
            self._add(exchange, content)
            return
        self._add(exchange)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        answer: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = int(message["status"])
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self._answer(exchange, b"".join(answer))
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            self._finish()

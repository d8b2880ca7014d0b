"""A tap around the state manager's ASGI app: every exchange with its answer, and scripted faults.

The black-box mode judges a runtime from the state manager's side. The fake's own request log
(``FakeStateManager.requests``) holds each request's time, body and status, but not the answer,
and a poll's answer is the only place that says which states it handed out (rule B2, B3). So the
suite serves the fake's app wrapped in a :class:`ServerTap`, which records each exchange with
the parsed answer on the fake's clock, and which can answer a scripted request itself with a
fault (``503`` JSON, or a ``502`` HTML page as a proxy would send) instead of passing it on: the
runtime sees exactly that answer, and the fake never sees the request (rules T3, E2, E3).

Only requests made after :meth:`ServerTap.arm` are recorded or faulted, so the suite's own
seeding (before the runtime starts) is neither. Appends happen on the server's thread; readers
take :meth:`ServerTap.snapshot` or wait with :meth:`ServerTap.wait_change` on a condition that
every exchange notifies, so nobody polls.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance._recording import request_kind

__all__ = ["FAULT_ANSWERS", "ServerTap", "TapExchange"]

ASGIApp = Callable[..., Any]

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
class TapExchange:
    """One request that reached the state manager's door, and what it was answered.

    Attributes:
        seq: arrival order among recorded exchanges.
        method, path: as received (no query string).
        request: the parsed JSON body, or None.
        arrived: the fake's clock when the request was read whole.
        answered: the fake's clock when the answer was sent whole (None if the app raised).
        status: the answer's status (None if the app raised).
        response: the parsed JSON answer, or its text, or None.
        fault: the injected fault's name when the tap answered instead of the fake, else None.
    """

    seq: int
    method: str
    path: str
    request: Any
    arrived: float
    answered: float | None = None
    status: int | None = None
    response: Any = None
    fault: str | None = None

    @property
    def kind(self) -> str:
        """The runtime call this is (contract §8.3): register, enqueue, executed, ..."""
        return request_kind(self.method, self.path)

    @property
    def forwarded(self) -> bool:
        """The fake received (and answered) this request."""
        return self.fault is None

    @property
    def ok(self) -> bool:
        """The fake applied it: forwarded and answered 2xx."""
        return self.forwarded and self.status is not None and 200 <= self.status < 300

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


def _parse(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return content.decode("utf-8", "replace")


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
        self._exchanges: list[TapExchange] = []
        self._script: _Script | None = None
        self._version = 0

    def arm(self, faults: Mapping[str, Sequence[str | None]] | None = None) -> None:
        """Start recording (and faulting per ``faults``: request kind -> fault names)."""
        for plan in (faults or {}).values():
            unknown = [f for f in plan if f is not None and f not in FAULT_ANSWERS]
            if unknown:
                raise ValueError(f"unknown faults {unknown}; known: {sorted(FAULT_ANSWERS)}")
        with self._changed:
            self._script = _Script(dict(faults or {}))

    def snapshot(self) -> list[TapExchange]:
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

    def _add(self, exchange: TapExchange) -> None:
        with self._changed:
            exchange.seq = len(self._exchanges)
            self._exchanges.append(exchange)
            self._version += 1
            self._changed.notify_all()

    def _finish(self) -> None:
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
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
        exchange = TapExchange(-1, method, path, _parse(body), self._now())
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
            exchange.response, exchange.answered = _parse(content), self._now()
            self._add(exchange)
            return
        self._add(exchange)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        answer: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                exchange.status = int(message["status"])
            elif message["type"] == "http.response.body":
                answer.append(message.get("body", b""))
                if not message.get("more_body", False):
                    exchange.response = _parse(b"".join(answer))
                    exchange.answered = self._now()
            await send(message)

        try:
            await self.app(scope, replay, capture)
        finally:
            self._finish()

"""Pure-ASGI middleware of the fake state manager (contract §1.3, §1.4).

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: no extra task or memory stream per
request (this is on the hot path of the benchmarks), and nothing that misbehaves under
``httpx.ASGITransport``.

Order, outermost first (see :func:`fake_state_manager._http.app.create_app`)::

    RequestIdMiddleware             every response carries x-exosphere-request-id (§1.4)
    RecorderMiddleware              optional log of (time, method, path, body, status)
    CORSMiddleware (starlette)      §1.4
    UnhandledExceptionsMiddleware   any unexpected exception -> 500 middleware body (§1.3)
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BODY_SCOPE_KEY",
    "INTERNAL_ERROR_DETAIL",
    "REQUEST_ID_HEADER",
    "RecordedRequest",
    "RecorderMiddleware",
    "RequestIdMiddleware",
    "UnhandledExceptionsMiddleware",
]

logger = logging.getLogger("fake_state_manager")

REQUEST_ID_HEADER = "x-exosphere-request-id"
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode("latin-1")

# Upstream names a support e-mail address here (contract §1.3); a client cannot rely on it, and the
# fake has no support team, so ours points at the project instead (docs/fidelity.md, §1.3).
INTERNAL_ERROR_DETAIL = (
    "internal server error, please reach out to support team at the exo-ref issue tracker"
)
_INTERNAL_ERROR_BODY = json.dumps(
    {"success": False, "detail": INTERNAL_ERROR_DETAIL}, separators=(",", ":")
).encode()

# The routes put the parsed JSON body here so the recorder does not parse it a second time.
BODY_SCOPE_KEY = "fake_state_manager.body"


def _valid_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class _HttpMiddleware:
    """A pure-ASGI middleware that acts on HTTP requests only (others pass straight through)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class RequestIdMiddleware(_HttpMiddleware):
    """Keep a valid UUID ``x-exosphere-request-id`` or make a new uuid4; echo it (contract §1.4)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id: bytes | None = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER_BYTES:
                text = value.decode("latin-1")
                if _valid_uuid(text):
                    request_id = value
                break
        if request_id is None:
            request_id = str(uuid.uuid4()).encode("latin-1")
        header = (_REQUEST_ID_HEADER_BYTES, request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append(header)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_id)


class UnhandledExceptionsMiddleware(_HttpMiddleware):
    """Turn any exception that escapes the app into upstream's 500 body (contract §1.3).

    For the fake this should never happen on bad input (the fuzz test checks it); when it does it
    is a bug in the fake, so it is logged with its traceback (never with request bodies, which may
    carry secrets).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if started:
                raise
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(_INTERNAL_ERROR_BODY)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _INTERNAL_ERROR_BODY})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received, for conformance checks (``FakeStateManager.requests``).

    Attributes:
        time: the fake's clock reading (epoch seconds) when the request arrived.
        method: the HTTP method, e.g. ``"POST"``.
        path: the URL path, e.g. ``"/v0/namespace/ns/states/enqueue"`` (no query string).
        body: the parsed JSON body, or ``None`` when there was none or it was not valid JSON.
        status: the HTTP status of the response.
    """

    time: float
    method: str
    path: str
    body: Any
    status: int


class RecorderMiddleware:
    """Append a :class:`RecordedRequest` to ``sink`` for every HTTP request.

    Cheap by design: no body copy or re-parse (the routes leave the parsed body in the scope).
    """

    def __init__(
        self, app: ASGIApp, *, sink: list[RecordedRequest], now: Callable[[], float]
    ) -> None:
        self.app = app
        self.sink = sink
        self.now = now

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        arrived = self.now()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.sink.append(
                RecordedRequest(
                    time=arrived,
                    method=scope["method"],
                    path=scope["path"],
                    body=scope.get(BODY_SCOPE_KEY),
                    status=status,
                )
            )

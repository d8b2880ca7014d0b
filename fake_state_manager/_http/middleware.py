"""Pure-ASGI middleware of the fake state manager (contract §1.3, §1.4).

Pure ASGI rather than Starlette's ``BaseHTTPMiddleware``: no extra task or memory stream per
request (this is on the hot path of the benchmarks), and nothing that misbehaves under
``httpx.ASGITransport``.

Order, outermost first (see :func:`fake_state_manager._http.app.create_app`)::

    RequestLogMiddleware            optional one line per request (dev server --log-requests)
    RequestIdMiddleware             every response carries x-exosphere-request-id (§1.4)
    RecorderMiddleware              optional log of (time, method, path, body, status)
    APIOnlyCORSMiddleware           starlette's CORS (§1.4), for every path but the dashboard's
    BodyLimitMiddleware             a body over the limit -> 413 before it is buffered (addition)
    UnhandledExceptionsMiddleware   any unexpected exception -> 500 middleware body (§1.3);
                                    a client gone mid-request -> one quiet log line
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fake_state_manager._http.log_limits import RateLimitFilter

__all__ = [
    "BODY_SCOPE_KEY",
    "DEFAULT_MAX_BODY_BYTES",
    "INTERNAL_ERROR_DETAIL",
    "REQUEST_ID_HEADER",
    "APIOnlyCORSMiddleware",
    "BodyLimitMiddleware",
    "RecordedRequest",
    "RecorderMiddleware",
    "RequestIdMiddleware",
    "RequestLogMiddleware",
    "UnhandledExceptionsMiddleware",
]

logger = logging.getLogger("fake_state_manager")
# What clients do wrong (gone mid-request, too slow): one quiet line each, rate-limited so that
# one client looping cannot flood the log (see log_limits).
client_logger = logging.getLogger("fake_state_manager.clients")
client_logger.addFilter(RateLimitFilter())

# Upstream has no limit (contract §1.3 lists none); a graph of 10,000 nodes is about 1 MB.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

REQUEST_ID_HEADER = "x-exosphere-request-id"
_REQUEST_ID_HEADER_BYTES = REQUEST_ID_HEADER.encode("latin-1")

# Upstream names a support e-mail address here (contract §1.3); a client cannot rely on it, and the
# fake has no support team, so ours points at the project instead (docs/fidelity.md, §1.3).
INTERNAL_ERROR_DETAIL = (
    "internal server error, please reach out to support team at the exo-ref issue tracker"
)

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


class APIOnlyCORSMiddleware(_HttpMiddleware):
    """Starlette's CORS for the API (§1.4), and none for the pages under ``excluded``.

    Upstream lets its localhost origins read every answer with credentials, and it has no
    pages. The dashboard's pages carry a session's CSRF token, and a browser sends the
    ``SameSite=Strict`` session cookie to any port of the same host: with CORS there, any page
    served on an allowed origin (``localhost:3000``, say) could read them and act as the user.
    The dashboard only ever calls itself, so it needs no CORS at all.
    """

    def __init__(self, app: ASGIApp, *, excluded: str, cors: dict[str, Any]) -> None:
        super().__init__(app)
        self._cors = CORSMiddleware(app, **cors)
        self._excluded = excluded.rstrip("/")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if path == self._excluded or path.startswith(self._excluded + "/"):
            await self.app(scope, receive, send)
        else:
            await self._cors(scope, receive, send)


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


def _json_answer(status: int, body: Any) -> tuple[Message, Message]:
    data = json.dumps(body, separators=(",", ":")).encode()
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode()),
        ],
    }
    return start, {"type": "http.response.body", "body": data}


class _StartTracker:
    """Wraps ``send`` and remembers whether the response has started (then no error answer fits)."""

    __slots__ = ("send", "started")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


class BodyTooLarge(Exception):
    """Raised from ``receive`` once a streamed body passes the limit; answered with 413."""


class BodyLimitMiddleware(_HttpMiddleware):
    """Refuse request bodies over ``max_body_bytes`` with 413 before they are buffered.

    An addition (docs/fidelity.md): upstream reads any body whole. A declared ``content-length``
    over the limit is refused before a byte of the body is read; a body without one (chunked) is
    counted as it arrives and refused as soon as it passes the limit, so memory stays bounded by
    the limit either way. Checked before authentication, like JSON syntax (§1.2): the point is to
    never buffer the body, with or without a key.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        super().__init__(app)
        if max_body_bytes < 1:
            raise ValueError(f"max_body_bytes must be at least 1, got {max_body_bytes}")
        self.max_body_bytes = max_body_bytes

    def _too_large(self) -> tuple[Message, Message]:
        return _json_answer(
            413,
            {
                "detail": f"Request body too large: the limit is {self.max_body_bytes} bytes"
                " (raise it with --max-body-bytes or FakeStateManager(max_body_bytes=...))"
            },
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break  # the HTTP server has already refused a malformed length
                if declared > limit:
                    for message in self._too_large():
                        await send(message)
                    return
                break
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        tracker = _StartTracker(send)
        try:
            await self.app(scope, counting_receive, tracker)
        except BodyTooLarge:
            if tracker.started:
                raise
            for message in self._too_large():
                await send(message)


request_logger = logging.getLogger("fake_state_manager.requests")


class RequestLogMiddleware(_HttpMiddleware):
    """One line per request: method, path, status, milliseconds, request id.

    Never the body, the query string or a header other than the request id: bodies carry
    secrets and outputs, and the key travels in a header. Sits outside
    :class:`RequestIdMiddleware` so the id it logs is the one the response carries.
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        status = 500
        request_id = "-"

        async def logging_send(message: Message) -> None:
            nonlocal status, request_id
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == _REQUEST_ID_HEADER_BYTES:
                        request_id = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, logging_send)
        finally:
            request_logger.info(
                "%s %s %d %.1fms %s",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - began) * 1000,
                request_id,
            )


class UnhandledExceptionsMiddleware(_HttpMiddleware):
    """Turn any exception that escapes the app into upstream's 500 body (contract §1.3).

    For the fake this should never happen on bad input (the fuzz test checks it); when it does it
    is a bug in the fake, so it is logged with its traceback (never with request bodies, which may
    carry secrets). A client that went away before its request was read is not a server error:
    it gets one quiet, rate-limited line on logger ``fake_state_manager.clients`` and no answer
    (there is nobody to answer).
    """

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        tracker = _StartTracker(send)
        try:
            await self.app(scope, receive, tracker)
        except ClientDisconnect:
            client = scope.get("client")
            who = f"{client[0]}:{client[1]}" if client else "a client"
            client_logger.info(
                "%s went away during %s %s", who, scope["method"], scope["path"]
            )
        except BodyTooLarge:
            raise  # answered by BodyLimitMiddleware, outside this one
        except Exception:
            logger.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if tracker.started:
                raise
            for message in _json_answer(500, {"success": False, "detail": INTERNAL_ERROR_DETAIL}):
                await send(message)


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

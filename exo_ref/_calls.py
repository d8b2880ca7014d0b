"""HTTP plumbing shared by the runtime's client and :class:`~exo_ref.StateManager`.

One place sends a request, turns transport failures into :mod:`exo_ref._errors` classes, and reads
an error status into a :class:`~exo_ref.StateManagerError` *before* any JSON is parsed (upstream
parsed first, so an HTML error page surfaced as a decoding error, contract §8.9 item 4). Messages
name the request (method and path) and the server's ``detail`` (contract §1.3) and never the API
key: ``key`` is replaced by ``***`` wherever server text is quoted, in case a proxy echoes it back.

The runtime's hot path sends without ``httpx.AsyncClient`` through a :class:`Sender`
(:class:`~exo_ref._h11_transport.LeanSender` over plain HTTP, :class:`AsgiSender` in process) and
reads an :class:`Answer`; error handling takes any :class:`Reply` (``httpx.Response`` fits), so
both paths fail the same way.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from typing import Any, Protocol

import anyio
import httpx

from ._config import ENV_API_KEY, ENV_STATE_MANAGER_URI
from ._errors import (
    AuthenticationError,
    StateManagerError,
    StateManagerTimeoutError,
    StateManagerTLSError,
    StateManagerUnavailableError,
)
from ._h11_transport import PLAIN_PATH, RawAnswer, header_fields
from ._masking import MIN_MASKED_LENGTH

__all__ = [
    "Answer",
    "AsgiSender",
    "BorrowedTransport",
    "RawAnswer",
    "Reply",
    "Sender",
    "body_start",
    "redact",
    "response_detail",
    "send",
    "status_error",
    "transport_failure",
]


class Reply(Protocol):
    """What callers read from an answer: ``httpx.Response`` fits, and so does :class:`Answer`."""

    @property
    def status_code(self) -> int: ...
    @property
    def content(self) -> bytes: ...
    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    def json(self) -> Any: ...


class Answer:
    """A whole answer without ``httpx.Response``'s machinery (the runtime's hot path).

    ``headers`` (names lower-cased) and ``text`` are built only when read: on the hot path only
    the status and the body are.
    """

    __slots__ = ("_headers", "_raw_headers", "content", "status_code")

    def __init__(self, answer: RawAnswer) -> None:
        self.status_code, _, self._raw_headers, self.content = answer
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> Mapping[str, str]:
        if self._headers is None:
            headers: dict[str, str] = {}
            raw = self._raw_headers
            fields = header_fields(raw, strict=False) if isinstance(raw, bytes) else raw
            for raw_name, raw_value in fields:
                name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            self._headers = headers
        return self._headers

    @property
    def text(self) -> str:
        charset = "utf-8"
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.strip().partition("=")
            if key.lower() == "charset" and value:
                charset = value.strip('"')
        try:
            return self.content.decode(charset, "replace")
        except LookupError:
            return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class Sender(Protocol):
    """Sends one request of the runtime's hot path without ``httpx.AsyncClient``.

    Failures raise ``httpx.TransportError`` subclasses, as a transport does.
    """

    #: ``scheme://host:port`` of the state manager, for messages.
    origin: str

    async def send(self, method: str, path: str, body: bytes | None) -> RawAnswer: ...


def redact(text: str, key: str | None) -> str:
    """``text`` with every occurrence of ``key`` replaced by ``***``.

    Keys shorter than :data:`~exo_ref._masking.MIN_MASKED_LENGTH` are left alone, as everywhere
    else (exo_ref._masking): a one-letter key would mangle every word of the message.
    """
    return text.replace(key, "***") if key and len(key) >= MIN_MASKED_LENGTH else text


def body_start(response: Reply, key: str | None) -> str:
    """The first 200 characters of a body, for an error message.

    ``key`` is masked before the text is cut, so that no part of it survives at the cut.
    """
    return redact(response.text, key)[:200]


def response_detail(response: Reply, key: str | None) -> str:
    """The ``detail`` of an error body (contract §1.3), else the start of the body.

    ``key`` is masked before the text is cut, as in :func:`body_start`.
    """
    try:
        data = response.json()
    except ValueError:
        return body_start(response, key)
    if isinstance(data, dict) and "detail" in data:
        return redact(str(data["detail"]), key)[:500]
    return redact(str(data), key)[:200]


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    path: str,
    *,
    content: str | bytes | None = None,
    json: Any = None,
    key: str | None = None,
    context: str = "",
) -> httpx.Response:
    """Send one request; a transport failure raises, a status (any) is returned.

    Args:
        path: the path after the namespace prefix, for messages.
        context: a prefix for messages (``StateManager`` uses upstream's ``Failed to ...:``).

    Raises:
        StateManagerTimeoutError: no answer within the client's timeout.
        StateManagerUnavailableError: any other transport failure (refused, reset, DNS...).
    """
    try:
        return await http.request(method, url, content=content, json=json)
    except httpx.TransportError as error:
        raise transport_failure(
            method, path, error, key=key, context=context, url=str(http.base_url.join(url))
        ) from error


def _origin(url: str | None) -> str:
    """``scheme://host:port`` of ``url`` (never its path or query), or ``""``."""
    if not url:
        return ""
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"


def _tls_failure(error: BaseException) -> bool:
    seen: BaseException | None = error
    for _ in range(8):  # the cause chain: httpx -> httpcore -> ssl
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def transport_failure(
    method: str,
    path: str,
    error: httpx.TransportError,
    *,
    key: str | None,
    context: str = "",
    url: str | None = None,
) -> StateManagerUnavailableError:
    """The :mod:`exo_ref._errors` exception for a transport failure (raise it ``from error``).

    Messages name the server (``scheme://host:port`` of ``url``) and what to change: a failure
    to connect is most often a wrong or unset URI, and a TLS failure against a local server an
    ``https://`` that should be ``http://``.
    """
    origin = _origin(url)
    where = f" at {origin}" if origin else ""
    if isinstance(error, httpx.TimeoutException):
        return StateManagerTimeoutError(
            f"{context}{method} {path} got no answer in time from the state manager{where}"
            f" ({type(error).__name__})"
        )
    text = redact(str(error), key)
    if _tls_failure(error):
        hint = ""
        if origin.startswith("https://"):
            hint = f"; if it serves plain HTTP (the dev server does), use http://{origin[8:]}"
        return StateManagerTLSError(
            f"{context}{method} {path}: the TLS handshake with the state manager{where} failed"
            f" ({type(error).__name__}: {text}){hint}"
        )
    return StateManagerUnavailableError(
        f"{context}{method} {path} could not reach the state manager{where}: "
        f"{type(error).__name__}: {text}; check state_manager_uri= / {ENV_STATE_MANAGER_URI}"
        " and that the state manager is running"
    )


def status_error(
    method: str,
    path: str,
    response: Reply,
    *,
    key: str | None = None,
    failure: str | None = None,
) -> StateManagerError:
    """The error for an unexpected status: :class:`AuthenticationError` for 401.

    The message is ``"{failure}: {status} {detail}"`` when ``failure`` is given (upstream's
    ``StateManager`` wording, contract §8.7), else ``"{method} {path} answered {status}:
    {detail}"``.
    """
    status = response.status_code
    detail = response_detail(response, key)
    if failure is not None:
        message = f"{failure}: {status} {detail}"
    else:
        message = f"{method} {path} answered {status}: {detail}"
    cls: type[StateManagerError] = StateManagerError
    if status == 401:
        cls = AuthenticationError
        message += f": the state manager refused the API key; check key= or {ENV_API_KEY}"
    return cls(
        message,
        status_code=status,
        detail=detail,
        method=method,
        path=path,
        retry_after=response.headers.get("retry-after"),
    )


class BorrowedTransport(httpx.AsyncBaseTransport):
    """Forwards to a caller's transport without ever closing it (the caller owns it)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None


class AsgiSender:
    """The runtime's hot path in process: calls the ASGI app of an ``httpx.ASGITransport``.

    It builds the scope that ``httpx.ASGITransport`` builds for the same request (path,
    headers, server, client, root path) and honours ``raise_app_exceptions``, but makes no
    ``httpx.Request``, ``Response``, ``Headers`` or ``URL`` per request: in process, those and
    ``AsyncClient``'s per-request layer (cookies, URL merging) were half of the runtime's CPU
    per state. Used only for an ``httpx.ASGITransport`` itself (``FakeStateManager.transport``);
    any other transport, a subclass included, goes through ``httpx.AsyncClient``.

    Args:
        transport: the in-process transport (its ``app``, ``root_path``, ``client`` and
            ``raise_app_exceptions`` are read on every request, as it does).
        prefix: ``http://host/v0/namespace/ns`` (every path is appended to it).
        headers: headers (name, value) sent on every request.
    """

    def __init__(
        self, transport: httpx.ASGITransport, prefix: str, headers: list[tuple[str, str]]
    ) -> None:
        url = httpx.URL(prefix)
        self._transport = transport
        self._prefix = prefix
        self._scheme = url.scheme
        self._server = (url.host, url.port)
        self._path = url.path.rstrip("/")
        self._raw_path = url.raw_path.rstrip(b"/")
        self.origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
        # The headers httpx.AsyncClient sends on an ASGI transport, less accept-encoding (the
        # body is read here, never decompressed) and the cookie jar (a state manager sets none).
        self._headers = [
            (b"host", url.netloc),
            (b"accept", b"*/*"),
            (b"connection", b"keep-alive"),
            (b"user-agent", f"python-httpx/{httpx.__version__}".encode("ascii")),
        ] + [(name.lower().encode("ascii"), value.encode("ascii")) for name, value in headers]

    async def send(self, method: str, path: str, body: bytes | None) -> RawAnswer:
        transport = self._transport
        if PLAIN_PATH.match(path):
            url_path, raw_path, query = self._path + path, self._raw_path + path.encode(), b""
        else:
            url = httpx.URL(self._prefix + path)
            url_path, raw_path, query = url.path, url.raw_path.split(b"?")[0], url.query
        headers = self._headers
        if body is not None or method in ("POST", "PUT", "PATCH"):
            headers = [*headers, (b"content-length", b"%d" % len(body or b""))]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "headers": headers,
            "scheme": self._scheme,
            "path": url_path,
            "raw_path": raw_path,
            "query_string": query,
            "server": self._server,
            "client": transport.client,
            "root_path": transport.root_path,
        }
        exchange = _AsgiExchange(body or b"", head=method == "HEAD")
        try:
            await transport.app(scope, exchange.receive, exchange.send)
        except Exception:
            if transport.raise_app_exceptions:
                raise
            exchange.finish()
        return exchange.answer()


class _AsgiExchange:
    """The ``receive`` and ``send`` callables of one ASGI request, and what was sent."""

    __slots__ = ("_body", "_complete", "_done", "_head", "_headers", "_parts", "_status")

    def __init__(self, body: bytes, *, head: bool) -> None:
        self._body: bytes | None = body
        self._head = head
        self._status: int | None = None
        self._headers: list[tuple[bytes, bytes]] | None = None
        self._parts: list[bytes] = []
        self._complete = False
        self._done: Any = None  # an anyio.Event, made only if the app waits for a disconnect

    async def receive(self) -> dict[str, Any]:
        body = self._body
        if body is not None:
            self._body = None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self._complete:
            if self._done is None:
                self._done = anyio.Event()
            await self._done.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Mapping[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self._status is not None:
                raise RuntimeError("the ASGI app started its response twice")
            self._status = message["status"]
            self._headers = list(message.get("headers", []))
        elif kind == "http.response.body":
            if self._complete:
                raise RuntimeError("the ASGI app sent a body after its response ended")
            body = message.get("body", b"")
            if body and not self._head:
                self._parts.append(body)
            if not message.get("more_body", False):
                self.finish()

    def finish(self) -> None:
        self._complete = True
        if self._done is not None:
            self._done.set()

    def answer(self) -> RawAnswer:
        if not self._complete:
            raise RuntimeError("the ASGI app returned without completing its response")
        status = self._status if self._status is not None else 500
        parts = self._parts
        return status, b"", self._headers or [], parts[0] if len(parts) == 1 else b"".join(parts)

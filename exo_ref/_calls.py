"""HTTP plumbing shared by the runtime's client and :class:`~exo_ref.StateManager`.

One place sends a request, turns transport failures into :mod:`exo_ref._errors` classes, and reads
an error status into a :class:`~exo_ref.StateManagerError` *before* any JSON is parsed (upstream
parsed first, so an HTML error page surfaced as a decoding error, contract §8.9 item 4). Messages
name the request (method and path) and the server's ``detail`` (contract §1.3) and never the API
key: ``key`` is replaced by ``***`` wherever server text is quoted, in case a proxy echoes it back.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from ._config import ENV_API_KEY, ENV_STATE_MANAGER_URI
from ._errors import (
    AuthenticationError,
    StateManagerError,
    StateManagerTimeoutError,
    StateManagerTLSError,
    StateManagerUnavailableError,
)
from ._masking import MIN_MASKED_LENGTH

__all__ = [
    "BorrowedTransport",
    "redact",
    "response_detail",
    "send",
    "send_direct",
    "status_error",
    "transport_failure",
]


def redact(text: str, key: str | None) -> str:
    """``text`` with every occurrence of ``key`` replaced by ``***``.

    Keys shorter than :data:`~exo_ref._masking.MIN_MASKED_LENGTH` are left alone, as everywhere
    else (exo_ref._masking): a one-letter key would mangle every word of the message.
    """
    return text.replace(key, "***") if key and len(key) >= MIN_MASKED_LENGTH else text


def response_detail(response: httpx.Response) -> str:
    """The ``detail`` of an error body (contract §1.3), else the start of the body."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict) and "detail" in data:
        return str(data["detail"])[:500]
    return str(data)[:200]


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    path: str,
    *,
    content: str | None = None,
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


async def send_direct(
    transport: httpx.AsyncBaseTransport,
    request: httpx.Request,
    path: str,
    *,
    key: str | None = None,
) -> httpx.Response:
    """Send a fully built ``request`` on ``transport`` itself, skipping ``AsyncClient``'s layer.

    Why: on the runtime's hot path (polls and reports, contract §8.3) the client's per-request
    work (URL merging, cookie extraction, auth and redirect hooks, none of which a state manager
    uses) cost about as much CPU as the HTTP exchange itself. Failures map as :func:`send`'s do.
    """
    try:
        response = await transport.handle_async_request(request)
        await response.aread()
    except httpx.TransportError as error:
        raise transport_failure(
            request.method, path, error, key=key, url=str(request.url)
        ) from error
    response.request = request
    return response


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
    response: httpx.Response,
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
    detail = redact(response_detail(response), key)
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

"""The HTTP side of :class:`~exo_ref.StateManager`: settings, client lifetime, one checked call.

Client lifetime: inside ``async with StateManager(...) as sm:`` one ``httpx.AsyncClient`` is
created on first use and reused until the block ends. Called without the context manager (as
upstream code does), each method opens its own client and closes it before returning, so nothing
leaks and the object may be used from several event loops one after the other. A ``transport``
you pass in is borrowed: closing a client never closes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from ._clock import Clock, SystemClock
from ._config import DEFAULT_STATE_MANAGER_VERSION, require_key, require_uri, resolve_timeout
from ._errors import InvalidResponseError
from ._http import BorrowedTransport, redact, send, status_error

__all__ = ["StateManagerHTTP", "dump", "segment"]


class StateManagerHTTP:
    """Base of :class:`~exo_ref.StateManager`: everything but the endpoints.

    Args:
        namespace: the namespace the graphs and runs live in.
        state_manager_uri: base URI such as ``http://localhost:8000``; ``None`` reads
            ``EXOSPHERE_STATE_MANAGER_URI``.
        key: the API key; ``None`` reads ``EXOSPHERE_API_KEY``. Never logged or put in errors.
        state_manager_version: the API version path segment.
        transport: an ``httpx.AsyncBaseTransport`` (``FakeStateManager.transport`` for the
            in-process fake, ``httpx.MockTransport`` in tests); ``None`` for real HTTP.
        clock: what the polling waits use (a ``ManualClock`` in tests).
        timeout: per-request timeout in seconds or an ``httpx.Timeout``.

    Raises:
        ConfigurationError: the URI or key is missing, or the URI is not http(s).
    """

    def __init__(
        self,
        namespace: str,
        state_manager_uri: str | None = None,
        key: str | None = None,
        state_manager_version: str = DEFAULT_STATE_MANAGER_VERSION,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        timeout: float | httpx.Timeout | None = None,
    ) -> None:
        # Checked here: upstream built "None/v0/..." URLs and failed at the first call (§8.7).
        uri = require_uri(state_manager_uri)
        self._key = require_key(key)
        self.namespace = namespace
        self._prefix = (
            f"{uri.rstrip('/')}/{segment(state_manager_version)}/namespace/{segment(namespace)}"
        )
        self._transport = BorrowedTransport(transport) if transport is not None else None
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._timeout = resolve_timeout(timeout)
        self._client: httpx.AsyncClient | None = None
        self._depth = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(namespace={self.namespace!r}, prefix={self._prefix!r})"

    # -- client lifetime ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._depth += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._depth -= 1
        if self._depth == 0:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the shared client, if one is open (a later call opens a new one)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self._transport, timeout=self._timeout, headers={"x-api-key": self._key}
        )

    @asynccontextmanager
    async def _http(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._depth > 0:
            if self._client is None:
                self._client = self._new_client()
            yield self._client
            return
        async with self._new_client() as client:
            yield client

    # -- one call ---------------------------------------------------------------------------------

    async def _call(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        failure: str,
        ok: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        """Send one request; check the status first, then parse a JSON object (§8.9.4).

        ``failure`` is upstream's message prefix (``Failed to trigger state`` ...).
        """
        context = f"{failure}: "
        response = await send(
            http, method, self._prefix + path, path, json=body, key=self._key, context=context
        )
        if response.status_code not in ok:
            raise status_error(method, path, response, key=self._key, failure=failure)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            text = redact(response.text[:200], self._key)
            raise InvalidResponseError(
                f"{context}{method} {path} answered {response.status_code} with a body that is "
                f"not a JSON object: {text!r}",
                status_code=response.status_code,
                detail=text,
                method=method,
                path=path,
            )
        return data


def segment(value: str) -> str:
    """One URL path segment, percent-encoded (upstream interpolated it raw)."""
    return quote(value, safe="")


def dump(model: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
    """A request-body dict; ``mode="json"`` turns str enums into values (upstream json.dumps)."""
    if isinstance(model, BaseModel):
        return model.model_dump(mode="json")
    return dict(model)

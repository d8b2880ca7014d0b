"""A lean HTTP/1.1 keep-alive transport for plain ``http://`` state managers.

Why: on a small machine httpx's default transport (httpcore) costs about a millisecond of CPU per
request, mostly connection-pool bookkeeping (every checkout asks the socket whether it is readable
through anyio's ``extra_attributes``, which builds a dict of lambdas each time). A runtime sends
two requests per state (a share of a poll, one report; contract §8.3), so that cost, not the
runtime or the server, capped loopback throughput. This transport does the same job with h11 (the
parser httpcore uses) on anyio streams: one request per connection at a time, connections kept
alive and reused, header and body written in one ``send``, the response read whole (state-manager
answers are small JSON documents), httpx's timeouts and exception classes.

The runtime uses it only for ``http://`` URIs when no proxy is configured in the environment
(:func:`exo_ref._config.lean_transport_suits`); HTTPS, proxies and everything else go through
httpx's own transport.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc
import h11
import httpx

__all__ = ["Http11Transport"]

_READ_SIZE = 65536


@contextmanager
def _mapped(timeout_error: type[httpx.TimeoutException], io_error: type[httpx.TransportError],
            request: httpx.Request) -> Iterator[None]:
    """Re-raise low-level failures as the httpx exception classes callers already handle."""
    try:
        yield
    except TimeoutError as error:
        raise timeout_error(str(error) or "timed out", request=request) from error
    except h11.ProtocolError as error:
        raise httpx.RemoteProtocolError(str(error), request=request) from error
    except (OSError, anyio.BrokenResourceError, anyio.EndOfStream,
            anyio.ClosedResourceError) as error:
        raise io_error(str(error) or type(error).__name__, request=request) from error


class _Connection:
    """One keep-alive connection: an anyio byte stream and its h11 state machine."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(our_role=h11.CLIENT)
        self._socket: socket.socket = stream.extra(anyio.abc.SocketAttribute.raw_socket)

    def looks_closed(self) -> bool:
        """An idle connection with something to read has been closed (or broken) by the peer."""
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(self._socket, select.POLLIN)
                return bool(poller.poll(0))
            readable, _, _ = select.select([self._socket], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    async def round_trip(self, request: httpx.Request, timeouts: dict[str, Any]) -> httpx.Response:
        body = await request.aread()
        event = h11.Request(
            method=request.method,
            target=request.url.raw_path,
            headers=request.headers.raw,
        )
        data = self.h11.send(event) or b""
        if body:
            data += self.h11.send(h11.Data(data=body)) or b""
        data += self.h11.send(h11.EndOfMessage()) or b""
        with _mapped(httpx.WriteTimeout, httpx.WriteError, request):
            with anyio.fail_after(timeouts.get("write")):
                await self.stream.send(data)
        with _mapped(httpx.ReadTimeout, httpx.ReadError, request):
            with anyio.fail_after(timeouts.get("read")):
                return await self._read_response(request)

    async def _read_response(self, request: httpx.Request) -> httpx.Response:
        head: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive(_READ_SIZE)
                except anyio.EndOfStream:
                    data = b""
                self.h11.receive_data(data)
            elif isinstance(event, h11.InformationalResponse):
                continue
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed, or PAUSED before the response ended
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without a complete response",
                    request=request,
                )
        assert head is not None  # h11 yields the Response before any Data/EndOfMessage
        return httpx.Response(
            head.status_code,
            headers=head.headers.raw_items(),
            content=b"".join(chunks),
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": head.reason},
            request=request,
        )

    def reusable(self) -> bool:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False

    async def aclose(self) -> None:
        await self.stream.aclose()


class Http11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over plain TCP with keep-alive reuse, for ``http://`` URLs only.

    Args:
        max_connections: connections open at once; more concurrent requests wait (pool timeout).
        max_keepalive_connections: idle connections kept for reuse.
    """

    def __init__(self, *, max_connections: int = 100, max_keepalive_connections: int = 20) -> None:
        self._slots = anyio.Semaphore(max_connections)
        self._keep = max_keepalive_connections
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._closed = False
        self.connections_opened = 0  # for tests and diagnostics: reuse keeps this small

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            raise httpx.UnsupportedProtocol(
                f"this transport serves http:// only, not {request.url.scheme!r}", request=request
            )
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        with _mapped(httpx.PoolTimeout, httpx.ConnectError, request):
            with anyio.fail_after(timeouts.get("pool")):
                await self._slots.acquire()
        try:
            return await self._send(request, timeouts)
        finally:
            self._slots.release()

    async def _send(self, request: httpx.Request, timeouts: dict[str, Any]) -> httpx.Response:
        origin = (request.url.host, request.url.port or 80)
        connection = await self._checkout(origin, request, timeouts)
        try:
            response = await connection.round_trip(request, timeouts)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await connection.aclose()
            raise
        idle = self._idle.setdefault(origin, [])
        if not self._closed and connection.reusable() and len(idle) < self._keep:
            idle.append(connection)
        else:
            await connection.aclose()
        return response

    async def _checkout(
        self, origin: tuple[str, int], request: httpx.Request, timeouts: dict[str, Any]
    ) -> _Connection:
        idle = self._idle.get(origin, [])
        while idle:
            connection = idle.pop()
            if not connection.looks_closed():
                return connection
            await connection.aclose()
        with _mapped(httpx.ConnectTimeout, httpx.ConnectError, request):
            with anyio.fail_after(timeouts.get("connect")):
                stream = await anyio.connect_tcp(*origin)
        self.connections_opened += 1
        return _Connection(stream)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                await connection.aclose()

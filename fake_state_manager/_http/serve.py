"""Serve an ASGI app with uvicorn: the dev server's hardened settings, in a thread or in this loop.

One home for how the fake meets real sockets: :func:`server_config` (used by the dev server,
:func:`serve_in_thread` and :func:`serve_here`) holds the connection hygiene of a local tool
that a careless or hostile client may still reach (README, "What the dev server is hardened
against"):

- a request must arrive whole (headers and body) within ``request_timeout`` seconds of its first
  byte, and a new connection must start one within that time, else the connection is closed
  (uvicorn has a keep-alive timeout between requests, but none while a request is arriving);
- at most ``limit_concurrency`` connections and tasks at once (uvicorn answers 503 beyond);
- no access log (one line per request is a flood under any load), and uvicorn's per-connection
  warnings pass through :class:`~fake_state_manager._http.log_limits.RateLimitFilter`.

Body size is bounded by the app itself (``BodyLimitMiddleware``), so it holds in-process too.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fake_state_manager._http.event_loop import asyncio_options
from fake_state_manager._http.log_limits import RateLimitFilter

if TYPE_CHECKING:  # uvicorn's protocols are asyncio's; only their types are named here
    from asyncio import TimerHandle, Transport

__all__ = [
    "DEFAULT_LIMIT_CONCURRENCY",
    "DEFAULT_REQUEST_TIMEOUT",
    "serve_here",
    "serve_in_thread",
    "server_config",
]

Background = Callable[[], Coroutine[Any, Any, None]]

# Seconds a request may take to arrive whole; generous for a local client uploading a big graph.
DEFAULT_REQUEST_TIMEOUT = 30.0
# Connections (and request tasks) served at once; a runtime keeps one or a few.
DEFAULT_LIMIT_CONCURRENCY = 256
# Idle seconds before a keep-alive connection is closed (uvicorn's default).
_KEEP_ALIVE = 5

_client_logger = logging.getLogger("fake_state_manager.clients")
_uvicorn_filter = RateLimitFilter()


class _GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a deadline for each request to arrive whole.

    The deadline is armed when the connection is made and when a request's first byte is
    parsed, and disarmed once its body is complete; the app's own time does not count.
    """

    request_timeout = DEFAULT_REQUEST_TIMEOUT
    _deadline: TimerHandle | None = None

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            who = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            _client_logger.info(
                "closing the connection of %s: no complete request within %ss",
                who,
                self.request_timeout,
            )
            self.transport.close()

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle from here until the next request: uvicorn's keep-alive timeout takes over.

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY,
) -> uvicorn.Config:
    """The uvicorn settings every served fake uses (see the module docstring for why).

    Raises:
        ValueError: a non-positive timeout or concurrency limit.
    """
    if request_timeout <= 0:
        raise ValueError(f"request_timeout must be > 0 seconds, got {request_timeout}")
    if limit_concurrency < 1:
        raise ValueError(f"limit_concurrency must be >= 1, got {limit_concurrency}")
    protocol = type(
        "GuardedHttpTools", (_GuardedHttpTools,), {"request_timeout": float(request_timeout)}
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        lifespan="off",
        log_level="warning",
        access_log=False,
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=_KEEP_ALIVE,
    )
    # uvicorn configures its loggers when the Config is built; add the filter after that.
    logging.getLogger("uvicorn.error").addFilter(_uvicorn_filter)
    return config


class _Server(uvicorn.Server):
    """A uvicorn server that reports "listening" through a :class:`threading.Event`."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


class _LoopServer(uvicorn.Server):
    """A uvicorn server inside the caller's event loop: reports readiness, leaves signals alone."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = anyio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The caller owns the process's signal handlers (pytest's SIGINT among them).
        yield


async def _main(server: _Server, background: Background | None) -> None:
    async with anyio.create_task_group() as tg:
        if background is not None:
            tg.start_soon(background)
        await server.serve()
        tg.cancel_scope.cancel()


def _uri(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def serve_in_thread(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    background: Background | None = None,
) -> Iterator[str]:
    """Run ``app`` under uvicorn in a daemon thread; yield its base URI ``http://HOST:PORT``.

    ``port=0`` binds a free port and the real one is read back from the listening socket. On exit
    the server is asked to stop (``should_exit``) and the thread is joined. The thread runs its own
    asyncio event loop, so anything the app shares with the caller must be thread-safe (the fake's
    engine is; a :class:`~exo_ref.ManualClock` is not).

    Args:
        app: the ASGI application.
        host: interface to bind; loopback by default.
        port: TCP port, ``0`` for any free one.
        background: an optional coroutine function run next to the server in its event loop
            (cancelled when the server stops), e.g. the fake's cron loop.

    Raises:
        RuntimeError: the server did not start (e.g. the port is in use); the cause is chained.
    """
    config = server_config(app, host=host, port=port)
    ready = threading.Event()
    server = _Server(config, ready)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            anyio.run(
                _main, server, background, backend="asyncio", backend_options=asyncio_options()
            )
        except BaseException as exc:  # noqa: BLE001 - reported to the caller's thread below
            failure.append(exc)
        finally:
            ready.set()

    thread = threading.Thread(target=run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    ready.wait()
    if not server.started:
        thread.join()
        cause = failure[0] if failure else None
        raise RuntimeError(
            f"uvicorn could not start on {host}:{port}; is the port free and the host local?"
        ) from cause
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield _uri(host, int(bound[1]))
    finally:
        server.should_exit = True
        thread.join()


@asynccontextmanager
async def serve_here(
    app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn as a task of the calling event loop; yield ``http://HOST:PORT``.

    Real sockets and uvicorn's HTTP parsing, but no thread: the app shares the caller's loop, so
    a :class:`~exo_ref.ManualClock` the caller advances is safe to use (the parity replay serves
    the fake this way). uvicorn runs on asyncio only.

    Raises:
        RuntimeError: not on asyncio, or the server did not start (e.g. the port is in use).
    """
    server = _LoopServer(server_config(app, host=host, port=port))
    failure: list[Exception] = []
    async with anyio.create_task_group() as tg:

        async def run() -> None:
            try:
                await server.serve()
            except Exception as exc:  # noqa: BLE001 - reported to the caller below
                failure.append(exc)
            finally:
                server.ready.set()

        tg.start_soon(run)
        try:
            await server.ready.wait()
        except BaseException:
            server.should_exit = True
            raise
        if server.started:
            bound = server.servers[0].sockets[0].getsockname()
            try:
                yield _uri(host, int(bound[1]))
            finally:
                server.should_exit = True
    if not server.started:  # raised outside the task group: a plain error, not a group
        raise RuntimeError(
            f"uvicorn could not start on {host}:{port}; it needs asyncio (on trio use"
            " serve_in_thread), a free port and a local host"
        ) from (failure[0] if failure else None)

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

The protocol also answers the fake's hot requests itself (issue #12): a runtime's polls and
reports, in their everyday shape, go from httptools' callbacks straight to the fast path's core
(:class:`~fake_state_manager._http.fastpath.FastPath`) and back as one write, with no ASGI task,
scope, ``receive``/``send`` messages or middleware awaits (and, when one arrives whole in one
read, with no parser callbacks either): the same bytes as the ASGI way, at a fraction of
uvicorn's per-request cost. Everything else, and anything unusual about a hot
request, takes uvicorn's own path (:class:`_GuardedHttpTools` says what and when).
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
)

from exo_ref import event_loop_options
from fake_state_manager._http.fastpath import FastPath, FastPathMiddleware, HotRequest
from fake_state_manager._http.log_limits import RateLimitFilter
from fake_state_manager._http.middleware import RequestLogMiddleware, request_logger

if TYPE_CHECKING:  # uvicorn's protocols are asyncio's; only their types are named here
    from asyncio import TimerHandle, Transport

__all__ = [
    "DEFAULT_KEEP_ALIVE",
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
DEFAULT_KEEP_ALIVE = 5.0

# A hot request's body waits in the protocol up to this size (uvicorn's own read buffer limit,
# beyond which it pauses reading until the app asks); a larger one goes the ASGI way.
_HOT_BODY_MAX = 65536
_HOT_PREFIX = b"/v0/namespace/"
# A hot request that arrives whole in one read (what a runtime sends: each request in one write)
# is read without the parser when its head has the plainest form HTTP/1.1 allows: the request
# line exactly ``POST /v0/namespace/... HTTP/1.1``, each header a token, a colon and visible
# ASCII words apart by spaces or tabs, CRLF line ends, a head within 8 KiB (see _read_whole).
_WHOLE_START = b"POST " + _HOT_PREFIX
_WHOLE_HEAD_MAX = 8192
_WHOLE_HEAD = re.compile(
    # The target: visible ASCII but "#", "%" and "?" (uvicorn's scope path is then the target).
    rb"POST (/[!\"$&-\x3e@-~]*) HTTP/1\.1\r\n"
    rb"((?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[ \t]*(?:[!-~]+(?:[ \t]+[!-~]+)*)?[ \t]*\r\n)*)\r\n"
)
_WHOLE_FIELD = re.compile(rb"([^:]+):[ \t]*((?:[!-~]+(?:[ \t]+[!-~]+)*)?)[ \t]*\r\n")
# Headers that change how a request is framed or the connection kept: the parser's business.
_FRAMING = frozenset({b"connection", b"expect", b"te", b"trailer", b"transfer-encoding",
                      b"upgrade"})

_client_logger = logging.getLogger("fake_state_manager.clients")
_uvicorn_filter = RateLimitFilter()


def _bypass(app: object) -> tuple[FastPath, bool] | None:
    """The fast path's core, if every ASGI layer above it is one the protocol can stand in for.

    Returns it with whether the request log is on. The layers, outermost first: uvicorn's
    proxy-headers middleware (it rewrites the scope's client and scheme, which the fast path
    never reads), the Starlette app, its ``ServerErrorMiddleware`` (the fast path never lets an
    exception out), the optional request log (the protocol writes its line), then the fast
    path. Anything else (uvicorn's message logger at trace level, Starlette's own body limit,
    another app) and the protocol answers nothing itself.
    """
    if type(app) is ProxyHeadersMiddleware:
        app = app.app
    if not isinstance(app, Starlette):
        return None
    if app.middleware_stack is None:  # built on the first request otherwise, the same way
        app.middleware_stack = app.build_middleware_stack()
    layer = app.middleware_stack
    if type(layer) is not ServerErrorMiddleware:
        return None
    layer = layer.app
    log = type(layer) is RequestLogMiddleware
    if log:
        layer = layer.app  # type: ignore[attr-defined]
    if type(layer) is not FastPathMiddleware or layer.core is None:
        return None
    return layer.core, log


def _plain_path(url: bytes) -> str | None:
    """The scope path uvicorn makes of a request target, for a plain one (no query, fragment or
    escape: ``httptools.parse_url`` would give it unchanged); else ``None``."""
    if not url.isascii() or b"?" in url or b"#" in url or b"%" in url:
        return None
    return url.decode("ascii")


def _read_whole(data: bytes) -> tuple[str, dict[bytes, bytes], bytes] | None:
    """``data`` as one whole hot request: its path, headers (one value per lower-case name) and
    body; or ``None`` when it is anything else (the parser then reads it).

    Only a head of the plain form (``_WHOLE_HEAD``) with no header named twice, no framing
    header (``_FRAMING``) and a ``content-length`` (digits) that is exactly the rest of
    ``data``: for such bytes httptools gives the same method, target, header names (lower-cased
    as uvicorn does) and values (without the whitespace around them, as llhttp and uvicorn
    strip it) and body, as one request with nothing after it.
    ``tests/fake_state_manager/http/test_serve_hot_path.py`` holds this against httptools over
    generated requests.
    """
    end = data.find(b"\r\n\r\n", 0, _WHOLE_HEAD_MAX)
    if end < 0:
        return None
    head = _WHOLE_HEAD.fullmatch(data, 0, end + 4)
    if head is None:
        return None
    pairs = _WHOLE_FIELD.findall(data, head.start(2), head.end(2))
    fields = {name.lower(): value for name, value in pairs}
    if len(fields) != len(pairs) or not _FRAMING.isdisjoint(fields):
        return None
    length = fields.get(b"content-length")
    start = end + 4
    if length is None or not length.isdigit() or int(length) != len(data) - start:
        return None
    return head[1].decode("ascii"), fields, data[start:]


def _encoded_headers(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """``headers`` as uvicorn writes them, or ``None`` where uvicorn would refuse one."""
    out = []
    for name, value in headers:
        if HEADER_RE.search(name) or HEADER_VALUE_RE.search(value):
            return None
        out.append(name.lower() + b": " + value + b"\r\n")
    return b"".join(out)


class _GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a deadline for each request to arrive whole, and the
    hot routes answered without ASGI.

    The deadline is armed when the connection is made and when a request's first byte is
    parsed, and disarmed once its body is complete; the app's own time does not count.

    Hot requests (issue #12): a keep-alive HTTP/1.1 ``POST`` that the fast path
    (:class:`~fake_state_manager._http.fastpath.FastPath`) takes by its path and headers, with
    a ``content-length`` body of at most 64 KiB (so no ``transfer-encoding``: the parser
    refuses the two together), no ``Expect: 100-continue``, nothing else in flight on the
    connection and the concurrency limit not reached, waits here for its body instead of
    becoming an ASGI task; once complete, the fast path's answer is written whole, exactly the
    bytes uvicorn would write for the same answer sent through ASGI (its ``date`` and
    ``server`` headers first). Whatever the fast path declines, and anything that happens
    before the body is complete (the connection lost, the server shutting down, the deadline),
    is handed to uvicorn's own path as if it had taken the request from its first byte, with
    what has arrived of the body.

    A hot request that arrives whole in one read, between two requests, in the plainest form
    (:func:`_read_whole`), skips the parser too: it is read with two regular expressions and
    answered before httptools sees a byte of it, which costs less than the parser's callbacks
    (one per header). Whatever that reading declines goes to the parser unchanged.
    """

    request_timeout = DEFAULT_REQUEST_TIMEOUT
    # One timer per connection, not one per request (a hot request is parsed and answered in
    # microseconds; arming and cancelling two timers each time was a visible share of it). It
    # goes off at the earliest time below that was set when it was armed, acts on what is due
    # by then and re-arms for what is still to come:
    # - when the request now arriving must be whole (loop time; None between requests);
    # - when a connection idle since a hot answer is closed (uvicorn's keep-alive timeout,
    #   which its own timer keeps after the answers its own path sends).
    _deadline: float | None = None
    _idle_until: float | None = None
    _timer: TimerHandle | None = None
    _timer_at = 0.0
    # Per server (the class is made per config): the fast path, found on the first connection.
    _resolved = False
    _core: FastPath | None = None
    _log = False
    _defaults: tuple[list[tuple[bytes, bytes]], bytes | None] = ([], b"")
    # The hot request whose body is arriving, its body so far, and when it began (for the log).
    _hot: HotRequest | None = None
    _hot_body = b""
    _hot_began = 0.0
    # Whether the parser is inside a request (its first byte seen, not yet complete).
    _in_message = False

    def _wake_at(self, when: float) -> None:
        if self._timer is None or when < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.loop.call_at(when, self._on_timer)
            self._timer_at = when

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.time() + self.request_timeout
            self._wake_at(self._deadline)

    def _disarm(self) -> None:
        self._deadline = None  # the timer, if still to go off, will find nothing due

    def _on_timer(self) -> None:
        self._timer = None
        now = self.loop.time()
        deadline, idle_until = self._deadline, self._idle_until
        if deadline is not None and now >= deadline:
            self._deadline = None
            self._expired()
        elif idle_until is not None and now >= idle_until:
            self._idle_until = None
            self.timeout_keep_alive_handler()
        elif deadline is not None or idle_until is not None:
            self._wake_at(min(t for t in (deadline, idle_until) if t is not None))

    def _expired(self) -> None:
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
        cls = type(self)
        if not cls._resolved:
            found = None if self.access_log or self.root_path else _bypass(self.app)
            if found is not None:
                cls._core, cls._log = found
            cls._resolved = True
        self._arm()

    def data_received(self, data: bytes) -> None:
        self._idle_until = None  # as uvicorn's keep-alive timer: any byte from the client ends it
        core = self._core
        if (
            core is not None
            and not self._in_message
            and data.startswith(_WHOLE_START)
            and self._answer_whole(core, data)
        ):
            return
        super().data_received(data)

    def _answer_whole(self, core: FastPath, data: bytes) -> bool:
        """Answer ``data``, one whole hot request, without the parser; ``False``: the parser
        reads it (it has seen none of it, so it is where it was, between two requests)."""
        whole = _read_whole(data)
        if whole is None or not self._free():
            return False
        path, fields, body = whole
        hot = self._checked(core.match_fields(path, fields))
        if hot is None:
            return False
        self._unset_keepalive_if_required()
        if not self._send_answer(core, hot, body):
            return False  # not the hot shape: the parser and uvicorn's path take it
        self._disarm()  # it arrived whole; the next one's first byte re-arms
        return True

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_message = True
        self._idle_until = None  # a request pipelined behind a hot one: busy, not idle
        self._arm()

    def on_headers_complete(self) -> None:
        hot = None if self._core is None else self._take(self._core)
        if hot is None:
            super().on_headers_complete()
        else:
            self._hot = hot
            self._hot_body = b""

    def _take(self, core: FastPath) -> HotRequest | None:
        """The request the parser has read the head of, as a hot one, or ``None``: uvicorn's
        own path takes it."""
        url = self.url
        parser = self.parser
        if (
            not url.startswith(_HOT_PREFIX)
            or self.expect_100_continue
            or parser.get_method() != b"POST"
            or parser.get_http_version() != "1.1"
            or not parser.should_keep_alive()
            or parser.should_upgrade()
            or not self._free()
        ):
            return None
        path = _plain_path(url)
        if path is None:
            return None
        return self._checked(core.match(path, self.headers))

    def _free(self) -> bool:
        """Whether the connection can take a hot request now, as uvicorn would start one."""
        cycle = self.cycle
        if (
            (cycle is not None and not cycle.response_complete)
            or self.pipeline
            or self.flow.write_paused  # the client is not reading: uvicorn waits, so must we
            or self.transport.is_closing()
        ):
            return False
        limit = self.limit_concurrency
        # At the limit, uvicorn's 503.
        return limit is None or (len(self.connections) < limit and len(self.tasks) < limit)

    def _checked(self, hot: HotRequest | None) -> HotRequest | None:
        """``hot`` if the protocol can wait for its body and write its answer itself."""
        # A content-length, so no transfer-encoding (the parser refuses the two together).
        if (
            hot is None
            or hot.declared is None
            or hot.declared > _HOT_BODY_MAX
            or (hot.request_id is not None and HEADER_VALUE_RE.search(hot.request_id))
        ):
            return None
        if self._log:
            self._hot_began = time.perf_counter()
        return hot

    def on_body(self, body: bytes) -> None:
        if self._hot is None:
            super().on_body(body)
        else:
            self._hot_body += body

    def on_message_complete(self) -> None:
        self._in_message = False
        self._disarm()
        hot, core = self._hot, self._core
        if hot is None or core is None:
            super().on_message_complete()
        elif self._send_answer(core, hot, self._hot_body):
            self._hot = None
            self._hot_body = b""
        else:
            self._hand_over(complete=True)

    def _send_answer(self, core: FastPath, hot: HotRequest, body: bytes) -> bool:
        """Write the fast path's answer to ``hot`` whole; ``False`` if it declined the body
        (nothing was called: the normal app answers it)."""
        defaults = self.server_state.default_headers
        cached, head = self._defaults
        if cached is not defaults:
            head = _encoded_headers(defaults)
            type(self)._defaults = (defaults, head)
        if head is None or (answer := core.answer(hot, body)) is None:
            return False
        status, headers, content = answer
        out = [STATUS_LINE[status], head]
        for name, value in headers:
            out.append(name + b": " + value + b"\r\n")
        out.append(b"\r\n")
        out.append(content)
        self.transport.write(b"".join(out))
        self._responded()
        if self._log:
            request_logger.info(
                "%s %s %d %.1fms %s",
                "POST",
                hot.path,
                status,
                (time.perf_counter() - self._hot_began) * 1000,
                headers[-1][1].decode("latin-1"),
            )
        return True

    def _responded(self) -> None:
        """uvicorn's ``on_response_complete`` for a hot answer, with the keep-alive timeout kept
        by this connection's one timer. Nothing is pipelined (a hot request is taken only with
        nothing before it, and the next one is parsed after this returns), so nothing to start.
        """
        self.server_state.total_requests += 1
        self.flow.resume_reading()
        self._idle_until = self.loop.time() + self.timeout_keep_alive
        self._wake_at(self._idle_until)

    def _hand_over(self, *, complete: bool) -> None:
        """Give the hot request to uvicorn's path: a task of the app, the body so far fed in."""
        body = self._hot_body
        self._hot = None
        self._hot_body = b""
        super().on_headers_complete()
        if body:
            super().on_body(body)
        if complete:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Idle from here until the next request: uvicorn's keep-alive timeout takes over.

    def shutdown(self) -> None:
        if self._hot is not None:
            self._hand_over(complete=False)
        super().shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._hot is not None:  # the app hears of it as if it had been waiting for the body
            self._hand_over(complete=False)
        super().connection_lost(exc)


def server_config(
    app: ASGIApp,
    *,
    host: str,
    port: int,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    limit_concurrency: int = DEFAULT_LIMIT_CONCURRENCY,
    keep_alive: float = DEFAULT_KEEP_ALIVE,
    hot_path: bool = True,
) -> uvicorn.Config:
    """The uvicorn settings every served fake uses (see the module docstring for why).

    Args:
        app: the ASGI application.
        host: interface to bind.
        port: TCP port, ``0`` for any free one.
        request_timeout: seconds a request may take to arrive whole.
        limit_concurrency: connections (and request tasks) served at once.
        keep_alive: idle seconds before a keep-alive connection is closed.
        hot_path: answer the fast path's hot requests in the HTTP protocol, without ASGI, where
            ``app`` is the fake's (see :class:`_GuardedHttpTools`); ``False`` only to compare.

    Raises:
        ValueError: a non-positive timeout, keep-alive or concurrency limit.
    """
    if request_timeout <= 0:
        raise ValueError(f"request_timeout must be > 0 seconds, got {request_timeout}")
    if limit_concurrency < 1:
        raise ValueError(f"limit_concurrency must be >= 1, got {limit_concurrency}")
    if keep_alive <= 0:
        raise ValueError(f"keep_alive must be > 0 seconds, got {keep_alive}")
    settings: dict[str, Any] = {"request_timeout": float(request_timeout)}
    if not hot_path:
        settings["_resolved"] = True  # resolved to nothing: every request takes the ASGI way
    protocol = type("GuardedHttpTools", (_GuardedHttpTools,), settings)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        lifespan="off",
        log_level="warning",
        access_log=False,
        limit_concurrency=limit_concurrency,
        timeout_keep_alive=keep_alive,  # type: ignore[arg-type]  # a float works as well
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
                _main, server, background, backend="asyncio", backend_options=event_loop_options()
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
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    keep_alive: float = DEFAULT_KEEP_ALIVE,
    hot_path: bool = True,
) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn as a task of the calling event loop; yield ``http://HOST:PORT``.

    Real sockets and uvicorn's HTTP parsing, but no thread: the app shares the caller's loop, so
    a :class:`~exo_ref.ManualClock` the caller advances is safe to use (the parity replay serves
    the fake this way). uvicorn runs on asyncio only. The settings are :func:`server_config`'s.

    Raises:
        RuntimeError: not on asyncio, or the server did not start (e.g. the port is in use).
    """
    config = server_config(
        app,
        host=host,
        port=port,
        request_timeout=request_timeout,
        keep_alive=keep_alive,
        hot_path=hot_path,
    )
    server = _LoopServer(config)
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

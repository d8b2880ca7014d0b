"""The served fake's hot path (``serve.py``): hot requests answered in the HTTP protocol.

Two identical fakes are served over real sockets, one with the protocol's hot path and one
without (``hot_path=False``: every request through uvicorn's ASGI cycle). The same raw requests go
to both, and everything a client or a test can observe must be the same: every byte each
connection receives (only the ``date`` header's value masked), when the server closes it, the
recorder's entries, the request log, and at the end every stored document. On the hot-path side
a spy on the fast-path middleware tells which requests went the ASGI way: the hand-overs (a bad
key, a bad body, a big body, chunked, ``Expect``, ``Origin``, ``Connection: close``, HTTP/1.0,
pipelined behind a slow request...) must, the everyday requests must not.

Request ids and run ids are drawn from one seeded ``uuid4`` per side, so they compare exactly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import httptools
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.server import ServerState

from fake_state_manager import FakeStateManager, ManualClock
from fake_state_manager._engine.engine import Engine
from fake_state_manager._http import fastpath, serve
from fake_state_manager._http.app import create_app
from fake_state_manager._store.sqlite import snapshot
from fake_state_manager._store.store import Store
from tests.builders import graph_node

from ..http_support import KEY, START, SeededUuids, registration

NS = "ns"
P = f"/v0/namespace/{NS}"
LIMIT = 100_000  # the body limit of both fakes: a 70 kB body is big yet allowed
REQUEST_ID = "0b0f6a49-3f0a-4a7b-8c1d-2a7e5f1c9d10"
_DATE = re.compile(rb"\r\ndate: [^\r]*\r\n")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn serves on asyncio only


# -- raw HTTP ------------------------------------------------------------------------------------


def request(
    method: str,
    path: str,
    body: bytes | Any = None,
    *,
    headers: list[tuple[str, str]] | None = None,
    key: str | None = KEY,
    version: str = "1.1",
    chunked: bool = False,
) -> bytes:
    """One request's bytes; ``body`` as bytes or as JSON."""
    raw = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/{version}", "host: 127.0.0.1"]
    if key is not None:
        lines.append(f"x-api-key: {key}")
    lines += [f"{name}: {value}" for name, value in headers or []]
    if raw is not None and chunked:
        lines.append("transfer-encoding: chunked")
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(raw), raw) if raw else b"0\r\n\r\n"
    elif raw is not None:
        lines += ["content-type: application/json", f"content-length: {len(raw)}"]
        payload = raw
    else:
        payload = b""
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


class Connection:
    """A client socket that reads whole responses (content-length or chunked bodies)."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def _more(self) -> bool:
        try:
            chunk = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return False
        self.buffer += chunk
        return True

    async def _until(self, marker: bytes) -> int:
        while (at := self.buffer.find(marker)) < 0:
            if not await self._more():
                raise AssertionError(f"closed before {marker!r}: {self.buffer!r}")
        return at

    async def response(self) -> bytes:
        """The next whole response, interim ``100 Continue`` lines included."""
        end = await self._until(b"\r\n\r\n") + 4
        head = self.buffer[:end].lower()
        if head.startswith(b"http/1.1 100 "):
            first, self.buffer = self.buffer[:end], self.buffer[end:]
            return first + await self.response()
        if b"\r\ntransfer-encoding: chunked\r\n" in head:
            while True:
                size_end = self.buffer.find(b"\r\n", end)
                while size_end < 0:
                    assert await self._more(), self.buffer
                    size_end = self.buffer.find(b"\r\n", end)
                size = int(self.buffer[end:size_end], 16)
                end = size_end + 2 + size + 2
                while len(self.buffer) < end:
                    assert await self._more(), self.buffer
                if size == 0:
                    break
        else:
            (length,) = re.findall(rb"\r\ncontent-length: (\d+)\r\n", head) or [b"0"]
            end += int(length)
            while len(self.buffer) < end:
                assert await self._more(), self.buffer
        answer, self.buffer = self.buffer[:end], self.buffer[end:]
        return answer

    async def rest(self) -> bytes:
        """Everything until the server closes the connection."""
        while await self._more():
            pass
        rest, self.buffer = self.buffer, b""
        return rest


# -- two identical served fakes ------------------------------------------------------------------


class _Capture(logging.Handler):
    """The request log's lines (milliseconds masked) of the active side."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: dict[str, list[str]] = {"hot": [], "asgi": []}
        self.active = ""

    def emit(self, record: logging.LogRecord) -> None:
        if self.active:
            self.lines[self.active].append(re.sub(r"\d+\.\dms", "<ms>", record.getMessage()))


@dataclass
class Side:
    name: str
    sm: FakeStateManager
    port: int
    asgi_calls: list[str] = field(default_factory=list)  # paths that reached the ASGI app

    async def connect(self) -> Connection:
        return Connection(await anyio.connect_tcp("127.0.0.1", self.port))


@dataclass
class Pair:
    """The hot-path server and the ASGI-only server of two identical fakes."""

    hot: Side
    asgi: Side
    uuids: SeededUuids
    capture: _Capture

    def sides(self) -> Iterator[Side]:
        for side in (self.hot, self.asgi):
            self.uuids.active = self.capture.active = side.name
            yield side
        self.capture.active = ""

    async def exchange(self, *steps: tuple[bytes, bool], close: bool = False) -> list[bytes]:
        """On a new connection each, send each step and read its answer; answers must match.

        A step is ``(raw request, whether the hot path answers it)``. With ``close`` the last
        step closes the connection, and the bytes after it (none) must match too.
        """
        got: dict[str, list[bytes]] = {}
        for side in self.sides():
            connection = await side.connect()
            answers = got[side.name] = []
            for raw, hot in steps:
                before = len(side.asgi_calls)
                await connection.stream.send(raw)
                answers.append(await connection.response())
                if side is self.hot:
                    taken = len(side.asgi_calls) == before
                    assert taken == hot, (raw[:80], side.asgi_calls[before:])
            if close:
                answers.append(await connection.rest())
            await connection.stream.aclose()
        assert _masked(got["hot"]) == _masked(got["asgi"])
        return got["hot"]

    async def pipelined(self, *raws: bytes) -> bytes:
        """All of ``raws`` in one write on a new connection; everything until the server closes."""
        got = {}
        for side in self.sides():
            connection = await side.connect()
            await connection.stream.send(b"".join(raws))
            got[side.name] = await connection.rest()
            await connection.stream.aclose()
        assert _masked([got["hot"]]) == _masked([got["asgi"]])
        return got["hot"]

    def assert_same_records(self) -> None:
        def entries(sm: FakeStateManager) -> list[tuple[Any, ...]]:
            return [(r.time, r.method, r.path, json.dumps(r.body, default=repr), r.status)
                    for r in sm.requests]

        assert entries(self.hot.sm) == entries(self.asgi.sm)
        assert snapshot(self.hot.sm.engine.store) == snapshot(self.asgi.sm.engine.store)
        assert self.capture.lines["hot"] == self.capture.lines["asgi"]


def _masked(answers: list[bytes]) -> list[bytes]:
    return [_DATE.sub(b"\r\ndate: <date>\r\n", answer) for answer in answers]


def _fake(log_requests: bool) -> FakeStateManager:
    engine = Engine(clock=ManualClock(START, auto_advance=False), rng=random.Random(7),
                    store=Store(id_prefix=1))
    return FakeStateManager(api_key=KEY, engine=engine, max_body_bytes=LIMIT,
                            log_requests=log_requests)


@pytest.fixture
def make_pair(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    uuids = SeededUuids()
    monkeypatch.setattr(uuid, "uuid4", uuids)
    monkeypatch.setattr(fastpath, "new_request_id", lambda: str(uuid.uuid4()).encode("latin-1"))
    capture = _Capture()
    requests_log = logging.getLogger("fake_state_manager.requests")
    requests_log.addHandler(capture)
    previous = requests_log.level
    requests_log.setLevel(logging.INFO)
    sides: list[Side] = []
    entered = fastpath.FastPathMiddleware.__call__

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        for side in sides:
            if self.core is not None and self.core.engine is side.sm.engine:
                side.asgi_calls.append(scope.get("path", ""))
        await entered(self, scope, receive, send)

    monkeypatch.setattr(fastpath.FastPathMiddleware, "__call__", spy)

    @asynccontextmanager
    async def make(*, log_requests: bool = False) -> AsyncIterator[Pair]:
        async with AsyncExitStack() as stack:
            for name, hot_path in (("hot", True), ("asgi", False)):
                uuids.sources[name] = random.Random(1234)
                sm = await stack.enter_async_context(_fake(log_requests))
                uri = await stack.enter_async_context(
                    serve.serve_here(sm.app, hot_path=hot_path)
                )
                sides.append(Side(name, sm, int(uri.rsplit(":", 1)[1])))
            yield Pair(sides[0], sides[1], uuids, capture)

    try:
        yield make
    finally:
        requests_log.removeHandler(capture)
        requests_log.setLevel(previous)


async def _setup(pair: Pair, fan_out: int) -> None:
    """Register Fan/Work, upsert a fan-out graph, trigger, fan out: ``fan_out`` Work states."""
    nodes = [registration("Fan", outputs=("i",)), registration("Work", inputs=("i",),
                                                                 outputs=("o",))]
    templates = [
        graph_node("fan", "Fan", next_nodes=["work"], namespace=NS),
        graph_node("work", "Work", inputs={"i": "${{ fan.outputs.i }}"}, namespace=NS),
    ]
    answers = await pair.exchange(
        (request("PUT", f"{P}/nodes/", {"runtime_name": "rt", "nodes": nodes}), False),
        (request("PUT", f"{P}/graph/g", {"secrets": {}, "nodes": templates}), False),
        (request("POST", f"{P}/graph/g/trigger", {}), False),
        (request("POST", f"{P}/states/enqueue", {"nodes": ["Fan"], "batch_size": 1}), True),
    )
    (root,) = _json(answers[3])["states"]
    outputs = [{"i": str(k)} for k in range(fan_out)]
    await pair.exchange(
        (request("POST", f"{P}/state/{root['state_id']}/executed", {"outputs": outputs}), True)
    )


def _json(answer: bytes) -> Any:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


async def _claim(pair: Pair, n: int) -> list[str]:
    (answer,) = await pair.exchange(
        (request("POST", f"{P}/states/enqueue", {"nodes": ["Work"], "batch_size": n}), True)
    )
    return [state["state_id"] for state in _json(answer)["states"]]


# -- byte for byte -------------------------------------------------------------------------------


@pytest.fixture(params=["whole", "parser"])
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> list[int] | None:
    """How the hot side reads hot requests: each arriving in one read taken whole without the
    parser (what a runtime's requests do), or every one through the parser's callbacks (what a
    request split over reads does). Counts the requests answered whole (``None``: never)."""
    if request.param == "parser":
        monkeypatch.setattr(serve, "_read_whole", lambda data: None)
        return None
    answered = [0]
    whole = serve._GuardedHttpTools._answer_whole

    def counted(self: Any, core: Any, data: bytes) -> bool:
        done = whole(self, core, data)
        answered[0] += done
        return done

    monkeypatch.setattr(serve._GuardedHttpTools, "_answer_whole", counted)
    return answered


@pytest.mark.parametrize("log_requests", [False, True], ids=["plain", "request-log"])
async def test_served_answers_are_the_same_bytes_with_and_without_the_hot_path(
    make_pair: Callable[..., Any], log_requests: bool, reader: list[int] | None
) -> None:
    async with make_pair(log_requests=log_requests) as pair:
        await _setup(pair, fan_out=30)
        ids = await _claim(pair, 20)
        done = {"outputs": [{"o": "done"}]}
        big = {"outputs": [{"o": "x" * 70_000}]}
        too_big = {"outputs": [{"o": "x" * LIMIT}]}
        state = f"{P}/state"
        answers = await pair.exchange(
            (request("POST", f"{state}/{ids[0]}/executed", done), True),
            (request("POST", f"{state}/{ids[0]}/executed", done), True),  # 400: not queued
            (request("POST", f"{state}/{'f' * 24}/executed", done), True),  # 404
            (request("POST", f"{state}/not-an-id/errored", {"error": "x"}), True),
            (request("POST", f"{state}/{ids[1]}/executed", done, key="wrong"), False),  # 401
            (request("POST", f"{state}/{ids[1]}/executed", done, key=None), False),
            (request("POST", f"{state}/{ids[1]}/executed", b"{"), False),  # 422, parsed here
            (request("POST", f"{state}/{ids[1]}/executed", {"outputs": "x"}), False),
            (request("POST", f"{state}/{ids[1]}/errored", {"error": "boom"}), True),
            (request("POST", f"{state}/{ids[2]}/re-enqueue-after", {"enqueue_after": 5}), True),
            (request("POST", f"{state}/{ids[3]}/executed", done,
                     headers=[("x-exosphere-request-id", REQUEST_ID)]), True),
            (request("POST", f"{state}/{ids[4]}/executed", done,
                     headers=[("x-exosphere-request-id", "not-a-uuid")]), True),
            (request("POST", f"{state}/{ids[5]}/executed", big), False),  # > 64 KiB: ASGI's
            (request("POST", f"{state}/{ids[6]}/executed", too_big), False),  # 413
            (request("POST", f"{state}/{ids[6]}/executed", done, chunked=True), False),
            (request("POST", f"{state}/{ids[7]}/executed", done,
                     headers=[("expect", "100-continue")]), False),
            (request("POST", f"{state}/{ids[8]}/executed", done,
                     headers=[("origin", "http://localhost:3000")]), False),
            (request("POST", f"{state}/{ids[9]}/executed?x=1", done), False),
            (request("POST", f"{state}/{ids[10]}%2F/executed", done), False),
            (request("POST", f"{P}/states/enqueue", {"nodes": ["Work"], "batch_size": "2"}),
             False),  # a number pydantic would convert: 422... or the normal app's answer
            (request("GET", "/health"), False),
            (request("POST", f"{P}/states/enqueue", {"nodes": ["Work"], "batch_size": 1}), True),
            (request("POST", f"{state}/{ids[11]}/executed", done,
                     headers=[("connection", "close")]), False),
            close=True,
        )
        assert [a.split(b" ", 2)[1] for a in answers[:3]] == [b"200", b"400", b"404"]
        assert answers[-1] == b""  # closed after the Connection: close answer
        assert b"\r\nconnection: close\r\n" in answers[-2]
        assert b"\r\n\r\n" + json.dumps({"status": "EXECUTED"}).replace(" ", "").encode() in (
            answers[12]
        )
        pair.assert_same_records()
    if reader is not None:  # requests sent in one write each, most arrive in one read
        assert reader[0] >= 6, reader


async def test_pipelined_requests_are_answered_alike_and_in_order(
    make_pair: Callable[..., Any],
) -> None:
    async with make_pair() as pair:
        await _setup(pair, fan_out=12)
        ids = await _claim(pair, 10)
        done = {"outputs": [{"o": "done"}]}
        state = f"{P}/state"
        before = len(pair.hot.asgi_calls), len(pair.asgi.asgi_calls)
        stream = await pair.pipelined(
            request("POST", f"{state}/{ids[0]}/executed", done),  # hot
            request("POST", f"{state}/{ids[1]}/executed", done),  # hot
            request("GET", "/health"),  # ASGI, and the next ones wait behind it
            request("POST", f"{state}/{ids[2]}/executed", done),
            request("POST", f"{state}/{ids[3]}/executed", done, key="wrong"),
            request("POST", f"{state}/{ids[4]}/errored", {"error": "e"}),
            request("POST", f"{P}/states/enqueue", {"nodes": ["Work"], "batch_size": 2}),
            request("POST", f"{state}/{ids[5]}/executed", done, headers=[("connection", "close")]),
            request("POST", f"{state}/{ids[6]}/executed", done),  # after the close: never run
        )
        assert stream.count(b"HTTP/1.1 ") == 8
        assert stream.endswith(b'{"status":"EXECUTED"}')
        hot_side = len(pair.hot.asgi_calls) - before[0]
        asgi_side = len(pair.asgi.asgi_calls) - before[1]
        assert asgi_side == 8
        # The first two had nothing before them: the protocol's. The ones parsed while the
        # health check was in flight queued behind it, the ASGI way (when they arrive in the
        # same segment, as they do on loopback, that is all six).
        assert 1 <= hot_side <= 6
        # The request after Connection: close was never executed, on either side.
        for side in (pair.hot, pair.asgi):
            assert side.sm.engine.store.states[ids[6]].status == "QUEUED"
        pair.assert_same_records()


async def test_an_http_1_0_request_after_a_hot_one_closes_and_ends_the_pipeline(
    make_pair: Callable[..., Any],
) -> None:
    async with make_pair() as pair:
        await _setup(pair, fan_out=4)
        ids = await _claim(pair, 4)
        done = {"outputs": [{"o": "done"}]}
        stream = await pair.pipelined(
            request("POST", f"{P}/state/{ids[0]}/executed", done),  # hot
            request("POST", f"{P}/state/{ids[1]}/executed", done, version="1.0"),  # closes
            request("POST", f"{P}/state/{ids[2]}/executed", done),
        )
        assert stream.count(b"HTTP/1.1 200 ") == 2
        pair.assert_same_records()


# -- what only the hot path does ----------------------------------------------------------------


class _Clients(logging.Handler):
    """Lines of ``fake_state_manager.clients``; ``heard`` is set by the first matching one."""

    def __init__(self, pattern: str) -> None:
        super().__init__(logging.DEBUG)
        self.pattern = pattern
        self.lines: list[str] = []
        self.heard = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if re.search(self.pattern, record.getMessage()):
            self.heard.set()


@pytest.fixture
def client_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], _Clients]]:
    logger = logging.getLogger("fake_state_manager.clients")
    for limit in logger.filters:  # rate-limited process-wide: start with a full budget
        if hasattr(limit, "_kinds"):
            monkeypatch.setattr(limit, "_kinds", {})
    handlers: list[_Clients] = []
    previous = logger.level
    logger.setLevel(logging.INFO)

    def make(pattern: str) -> _Clients:
        handler = _Clients(pattern)
        logger.addHandler(handler)
        handlers.append(handler)
        return handler

    yield make
    for handler in handlers:
        logger.removeHandler(handler)
    logger.setLevel(previous)


async def test_a_hot_body_that_never_completes_is_closed_at_the_deadline_and_heard_by_the_app(
    client_lines: Callable[[str], _Clients],
) -> None:
    lines = client_lines("went away during POST")
    async with _fake(False) as sm, serve.serve_here(sm.app, request_timeout=0.3) as uri:
        body = json.dumps({"outputs": [{"o": "done"}]}).encode()
        raw = request("POST", f"{P}/state/{'0' * 24}/executed", body)
        async with await anyio.connect_tcp("127.0.0.1", int(uri.rsplit(":", 1)[1])) as stream:
            await stream.send(raw[:-5])  # the body stops arriving
            with anyio.fail_after(10):
                assert await Connection(stream).rest() == b""  # closed by the deadline
                await lines.heard.wait()  # and the app heard of it, as if it had been waiting
    assert any("no complete request within 0.3s" in line for line in lines.lines)
    assert [r.status for r in sm.requests] == [500]  # recorded, unanswered


async def test_an_idle_connection_after_a_hot_answer_is_closed_at_the_keep_alive_timeout() -> None:
    async with (
        _fake(False) as sm,
        serve.serve_here(sm.app, keep_alive=0.2) as uri,
        await anyio.connect_tcp("127.0.0.1", int(uri.rsplit(":", 1)[1])) as stream,
    ):
        connection = Connection(stream)
        for _ in range(3):  # a busy connection stays open
            await stream.send(
                request("POST", f"{P}/states/enqueue", {"nodes": ["W"], "batch_size": 1})
            )
            assert (await connection.response()).startswith(b"HTTP/1.1 200 ")
        answered = anyio.current_time()
        with anyio.fail_after(10):
            assert await connection.rest() == b""
        assert anyio.current_time() - answered >= 0.2


def test_the_hot_path_is_found_only_in_the_fake_app() -> None:
    sm = _fake(False)
    found = serve._bypass(ProxyHeadersMiddleware(sm.app))  # type: ignore[arg-type]
    assert found is not None
    assert found[0].engine is sm.engine
    assert found[1] is False
    logged = _fake(True)
    found = serve._bypass(logged.app)
    assert found is not None
    assert found[1] is True
    plain = create_app(sm.engine, api_key=KEY, fast_path=False)
    assert serve._bypass(plain) is None
    assert serve._bypass(Starlette()) is None
    limited = create_app(sm.engine, api_key=KEY)
    limited.max_body_size = 10  # Starlette's own limit: a layer the protocol cannot stand in for
    assert serve._bypass(limited) is None

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - not run
        pass

    assert serve._bypass(app) is None


def test_plain_paths_are_read_as_uvicorn_reads_them() -> None:
    # uvicorn: httptools.parse_url(target).path, unquoted when it has a "%"; the protocol takes
    # only targets that parse to themselves, and hands the rest over.
    class Target:
        url = b""

        def on_url(self, url: bytes) -> None:
            self.url += url

    taken = 0
    for byte in range(256):
        for target in (b"/v0/namespace/a%cb/states/enqueue" % byte, b"/v0/%c" % byte):
            holder = Target()
            try:
                httptools.HttpRequestParser(holder).feed_data(
                    b"POST " + target + b" HTTP/1.1\r\nhost: x\r\n\r\n"
                )
            except httptools.HttpParserError:
                continue  # refused before any callback of ours
            path = serve._plain_path(holder.url)
            if path is not None:
                parsed = httptools.parse_url(holder.url)
                assert parsed.path.decode("ascii") == path, target
                assert not parsed.query, target
                taken += 1
    assert taken > 150
    for target in (b"/a?b", b"/a#b", b"/a%20b", "/\u00e9".encode()):
        assert serve._plain_path(target) is None


# -- the protocol alone, on a transport that records what it is given ---------------------------


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False
        self.writes = 0
        self.wrote = asyncio.Event()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)
        self.writes += 1
        self.wrote.set()

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True
        self.wrote.set()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default
        )

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _protocol(sm: FakeStateManager, **settings: Any) -> tuple[Any, _Transport, ServerState]:
    config = serve.server_config(sm.app, host="127.0.0.1", port=0, **settings)
    config.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Thu, 01 Jan 2026 00:00:00 GMT"), (b"server", b"uvicorn")]
    protocol_class: Any = config.http_protocol_class
    protocol = protocol_class(config=config, server_state=state, app_state={})
    transport = _Transport()
    protocol.connection_made(transport)
    return protocol, transport, state


async def test_a_hot_request_waiting_for_its_body_at_shutdown_is_answered_with_close() -> None:
    async with _fake(False) as sm:
        protocol, transport, state = _protocol(sm)
        raw = request("POST", f"{P}/states/enqueue", {"nodes": ["W"], "batch_size": 1})
        protocol.data_received(raw[:-3])
        assert protocol.cycle is None  # waiting in the protocol, no ASGI task yet
        protocol.shutdown()  # the server stops: the request becomes uvicorn's own
        assert protocol.cycle is not None
        assert not protocol.cycle.keep_alive
        protocol.data_received(raw[-3:])
        with anyio.fail_after(10):
            while not transport.closed:
                await transport.wrote.wait()
                transport.wrote.clear()
        assert transport.written.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"\r\nconnection: close\r\n" in transport.written
        assert state.total_requests == 1


async def test_hot_requests_over_the_concurrency_limit_get_uvicorns_503() -> None:
    async with _fake(False) as sm:
        protocol, transport, _ = _protocol(sm, limit_concurrency=1)  # this connection is one
        protocol.data_received(
            request("POST", f"{P}/states/enqueue", {"nodes": ["W"], "batch_size": 1})
        )
        with anyio.fail_after(10):
            while b"\r\n\r\n" not in transport.written:
                await transport.wrote.wait()
                transport.wrote.clear()
        assert transport.written.startswith(b"HTTP/1.1 503 ")
    assert sm.requests == []  # the fake never saw it


async def test_a_hot_answer_is_written_at_once_with_uvicorns_headers_first() -> None:
    async with _fake(False) as sm:
        protocol, transport, state = _protocol(sm)
        protocol.data_received(
            request("POST", f"{P}/states/enqueue", {"nodes": ["W"], "batch_size": 1},
                    headers=[("x-exosphere-request-id", REQUEST_ID)])
        )
        body = b'{"count":0,"namespace":"ns","status":"QUEUED","states":[]}'
        assert transport.written == (
            b"HTTP/1.1 200 OK\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\nserver: uvicorn\r\n"
            b"content-length: %d\r\ncontent-type: application/json\r\n%s"
            b"x-exosphere-request-id: %s\r\n\r\n%s"
        ) % (len(body), b"".join(b"%s: %s\r\n" % h for h in _cors(sm)), REQUEST_ID.encode(),
             body)
        assert transport.writes == 1
        assert state.total_requests == 1
        assert not state.tasks
        protocol.connection_lost(None)


def _cors(sm: FakeStateManager) -> list[tuple[bytes, bytes]]:
    found = serve._bypass(sm.app)
    assert found is not None
    return found[0].cors


# -- a whole request read without the parser ---------------------------------------------------


class _Parsed:
    """What httptools (as uvicorn drives it) makes of some bytes."""

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.messages = 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value.rstrip(b" \t")))  # as uvicorn's on_header

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.messages += 1


_TARGET = f"{P}/state/{'a' * 24}/executed"
_PLAIN_NAMES = ["host", "x-api-key", "X-Api-Key", "content-type", "Content-Length",
                "x-exosphere-request-id", "accept", "user-agent", "Accept-Encoding", "x-!#$%&'*+"]
_ODD_NAMES = ["content-length", "origin", "connection", "Transfer-Encoding", "expect", "te",
              "trailer", "upgrade", "bad name", "", "a\x00b", "caf\u00e9", "x(y)"]
_VISIBLE = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12)
_PLAIN_VALUES = st.one_of(
    st.sampled_from(["", "application/json", KEY, "keep-alive", REQUEST_ID, "a  b", "a\tb"]),
    _VISIBLE,
)
_ODD_VALUES = st.one_of(
    st.sampled_from(["close", "chunked", "100-continue", "a\r\n b"]),
    st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=12),
)


def _odd(draw: st.DrawFn, plain: Any, *odd: Any) -> Any:
    """Mostly ``plain``; one time in eight, one of ``odd``."""
    return draw(st.sampled_from(odd)) if odd and draw(st.integers(0, 7)) == 0 else plain


@st.composite
def _requests(draw: st.DrawFn) -> bytes:
    """Hot-shaped requests: half plain but for whitespace, header case and order; half with
    a few of the ways a request can be unusual."""
    odd = draw(st.booleans())
    pick = (lambda plain, *others: _odd(draw, plain, *others)) if odd else (
        lambda plain, *others: plain)
    method = pick("POST", "GET", "post", "PUT", "POST ")
    target = _TARGET + pick("", "?x=1", "%2F", "#f", " x", "\u00e9", "\x7f", "\\", "/", "*")
    version = pick("HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "http/1.1", "HTTP/1.1 ")
    eol = pick("\r\n", "\n", "\r")
    body = draw(st.binary(max_size=40))
    names = st.sampled_from(_PLAIN_NAMES + _ODD_NAMES if odd else _PLAIN_NAMES)
    values = st.one_of(_PLAIN_VALUES, _ODD_VALUES) if odd else _PLAIN_VALUES
    fields = draw(st.lists(st.tuples(names, values), max_size=4,
                           unique_by=lambda field: field[0].lower()))
    fields = [field for field in fields if field[0].lower() != "content-length"]
    fields.insert(draw(st.integers(0, len(fields))), (
        draw(st.sampled_from(["content-length", "Content-Length"])),
        pick(str(len(body)), str(len(body) + 1), str(max(len(body) - 1, 0)), f"+{len(body)}",
             f"0{len(body)}", "", "x", f"{len(body)} 1", f"{len(body)}\x00"),
    ))
    if pick(False, True):
        fields.append((draw(st.sampled_from(fields))[0].upper(), draw(values)))  # named twice
    lines = [f"{method} {target} {version}"]
    for name, value in fields:
        gaps = st.sampled_from(["", " ", "  ", "\t", " \t"])
        lines.append(f"{name}{pick(':', ' :', '::')}{draw(gaps)}{value}{draw(gaps)}")
    head = (eol.join(lines) + eol + eol).encode("latin-1")
    head = head.replace("\u00e9".encode("latin-1"), "\u00e9".encode())  # UTF-8 in a target
    return head + body + pick(b"", b"x", b"GET / HTTP/1.1\r\n\r\n")


@settings(max_examples=3000)
@given(_requests())
def test_a_whole_request_is_read_as_httptools_reads_it_or_left_to_the_parser(data: bytes) -> None:
    whole = serve._read_whole(data)
    if whole is None:
        return  # the parser reads it: always safe
    path, fields, body = whole
    parsed = _Parsed()
    parser = httptools.HttpRequestParser(parsed)
    parser.set_dangerous_leniencies(lenient_data_after_close=True)
    parser.feed_data(data)  # raises if httptools would refuse what was taken
    assert parsed.messages == 1
    assert parser.get_method() == b"POST"
    assert parser.get_http_version() == "1.1"
    assert parser.should_keep_alive()
    assert not parser.should_upgrade()
    assert serve._plain_path(parsed.url) == path
    assert dict(parsed.headers) == fields
    assert len(parsed.headers) == len(fields)
    assert parsed.body == body


def test_the_plainest_requests_are_read_whole_and_the_unusual_ones_left_to_the_parser() -> None:
    body = json.dumps({"outputs": [{"o": "done"}]}).encode()
    plain = request("POST", _TARGET, body, headers=[("x-exosphere-request-id", REQUEST_ID)])
    whole = serve._read_whole(plain)
    assert whole is not None
    assert whole[0] == _TARGET
    assert whole[1][b"x-api-key"] == KEY.encode()
    assert whole[1][b"x-exosphere-request-id"] == REQUEST_ID.encode()
    assert whole[2] == body
    spaced = plain.replace(b"x-api-key: ", b"X-API-Key:\t  ").replace(b"\r\nhost: 127.0.0.1",
                                                                      b"\r\nhost: 127.0.0.1 \t")
    assert serve._read_whole(spaced) == (whole[0], {**whole[1], b"host": b"127.0.0.1"}, body)
    unusual = [
        plain[:-1],  # the body not all here yet
        plain + b"GET /health HTTP/1.1\r\n\r\n",  # another request behind it
        plain.replace(b"HTTP/1.1", b"HTTP/1.0"),
        plain.replace(b"host:", b"connection: keep-alive\r\nhost:"),
        plain.replace(b"host:", b"expect: 100-continue\r\nhost:"),
        plain.replace(b"host:", b"transfer-encoding: chunked\r\nhost:"),
        plain.replace(b"host:", b"x-api-key: other\r\nhost:"),  # a name twice
        plain.replace(b"host:", b"folded:\r\n value\r\nhost:"),
        plain.replace(b"\r\n", b"\n"),
        plain.replace(b"executed", b"executed?x=1"),
        plain.replace(b"content-length: %d" % len(body), b"content-length: +%d" % len(body)),
        plain.replace(b"x-api-key: ", b"x-api-key : "),
        plain.replace(b"127.0.0.1", b"caf\xc3\xa9"),
        plain.replace(b"POST", b"PUT"),
        b"POST " + _TARGET.encode() + b" HTTP/1.1\r\n" + b"x: y\r\n" * 1000 + b"\r\n",
    ]
    assert [serve._read_whole(raw) for raw in unusual] == [None] * len(unusual)
    assert serve._read_whole(plain.replace(b"content-length: %d" % len(body),
                                           b"content-length: 0")[: -len(body)]) is not None

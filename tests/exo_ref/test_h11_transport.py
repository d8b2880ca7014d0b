"""The lean HTTP/1.1 transport (exo_ref._h11_transport) and the runtime's single client.

Real sockets on 127.0.0.1: a scripted raw TCP server for framing and failure cases, and the fake
state manager under uvicorn for the runtime end to end.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import httpx
import pytest

import exo_ref._runtime_client
from exo_ref import (
    AuthenticationError,
    InvalidResponseError,
    ManualClock,
    Runtime,
    StateManagerError,
    StateManagerTimeoutError,
    StateManagerUnavailableError,
)
from exo_ref._config import lean_transport_suits
from exo_ref._h11_transport import Http11Transport, LeanSender
from exo_ref._runtime_client import StateManagerClient
from fake_state_manager import FakeStateManager, SystemClock
from tests.builders import NAMESPACE, graph_node

from .helpers import KEY, EchoNode, Fan, client_settings

Serve = Callable[[anyio.abc.SocketStream], Awaitable[None]]


async def read_request(stream: anyio.abc.SocketStream, buffer: bytearray) -> bytes:
    """One request head plus its Content-Length body from ``stream`` (b"" at EOF)."""
    while b"\r\n\r\n" not in buffer:
        try:
            buffer += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            return b""
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    end = len(head) + 4 + length
    while len(buffer) < end:
        buffer += await stream.receive()
    request = bytes(buffer[:end])
    del buffer[:end]
    return request


@asynccontextmanager
async def raw_server(serve: Serve) -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP server on 127.0.0.1 running ``serve`` per connection; yields (uri, connections)."""
    connections: list[int] = []
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def handle(stream: anyio.abc.SocketStream) -> None:
        connections.append(1)
        async with stream:
            await serve(stream)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield f"http://127.0.0.1:{port}", connections
        tg.cancel_scope.cancel()


def ok(body: bytes, *extra: bytes) -> bytes:
    headers = b"".join(h + b"\r\n" for h in extra)
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), headers, body)


async def keep_alive(stream: anyio.abc.SocketStream) -> None:
    buffer = bytearray()
    while request := await read_request(stream, buffer):
        await stream.send(ok(request.split(b" ")[1]))  # echo the target


async def test_sequential_requests_reuse_one_connection() -> None:
    async with (
        raw_server(keep_alive) as (uri, connections),
        httpx.AsyncClient(base_url=uri, transport=Http11Transport()) as client,
    ):
        for k in range(5):
            response = await client.post(f"/p{k}?q=1", json={"k": k})
            assert response.status_code == 200
            assert response.text == f"/p{k}?q=1"
        assert len(connections) == 1


async def test_concurrent_requests_open_one_connection_each_and_keep_them() -> None:
    transport = Http11Transport(max_connections=3)
    async with (
        raw_server(keep_alive) as (uri, connections),
        httpx.AsyncClient(base_url=uri, transport=transport) as client,
    ):
        for _ in range(4):
            async with anyio.create_task_group() as tg:
                for k in range(6):
                    tg.start_soon(client.get, f"/{k}")
        # never more than max_connections at once, and reused across the rounds
        assert transport.connections_opened == len(connections) <= 3


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"transfer-encoding: chunked\r\n", id="chunked"),
        # RFC 9110 section 5.3: two lines are one list; the last coding, chunked, frames it.
        pytest.param(
            b"transfer-encoding: x-custom\r\ntransfer-encoding: chunked\r\n", id="two-lines"
        ),
    ],
)
async def test_chunked_response_is_read_whole(response: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\n" + response + b"\r\n"
    chunks = b'3\r\n{"a\r\n5\r\n": 1}\r\n0\r\n\r\n'
    async with (
        raw_server(answer_once(head + chunks)) as (uri, _),
        httpx.AsyncClient(base_url=uri, transport=Http11Transport()) as client,
    ):
        assert (await client.get("/")).json() == {"a": 1}


async def test_connection_closed_by_server_is_not_reused() -> None:
    closed = anyio.Event()

    async def one_shot(stream: anyio.abc.SocketStream) -> None:
        nonlocal closed
        await read_request(stream, bytearray())
        await stream.send(ok(b"x"))  # keep-alive implied, but the server closes anyway
        await stream.aclose()
        closed.set()

    transport = Http11Transport()
    async with (
        raw_server(one_shot) as (uri, connections),
        httpx.AsyncClient(base_url=uri, transport=transport) as client,
    ):
        for _ in range(3):
            assert (await client.get("/")).text == "x"
            await closed.wait()  # the idle pooled connection is now dead
            closed = anyio.Event()
        assert len(connections) == 3


async def test_connection_close_header_is_honoured() -> None:
    async def closing(stream: anyio.abc.SocketStream) -> None:
        buffer = bytearray()
        while await read_request(stream, buffer):
            await stream.send(ok(b"x", b"connection: close"))

    transport = Http11Transport()
    async with (
        raw_server(closing) as (uri, _),
        httpx.AsyncClient(base_url=uri, transport=transport) as client,
    ):
        for _ in range(2):
            assert (await client.get("/")).text == "x"
        assert transport.connections_opened == 2


async def test_a_request_saying_connection_close_does_not_reuse_its_connection() -> None:
    # RFC 9112 section 9.6: after sending close the client sends nothing more on that connection,
    # even when the answer does not echo the close.
    transport = Http11Transport()
    async with (
        raw_server(keep_alive) as (uri, connections),
        httpx.AsyncClient(base_url=uri, transport=transport) as client,
    ):
        assert (await client.get("/one", headers={"connection": "close"})).text == "/one"
        assert (await client.get("/two")).text == "/two"
        assert (await client.get("/three")).text == "/three"
        assert len(connections) == 2  # the second and third share one


@pytest.mark.parametrize(
    ("fields", "reused"),
    [
        pytest.param(b"connection: x-trace\r\nconnection: close\r\n", False, id="close-last"),
        pytest.param(b"connection: close\r\nconnection: x-trace\r\n", False, id="close-first"),
        pytest.param(b"connection: x-trace\r\nconnection: keep-alive\r\n", True, id="no-close"),
    ],
)
async def test_a_list_header_on_several_lines_is_read_as_one_list(
    fields: bytes, reused: bool
) -> None:
    # RFC 9110 section 5.3: field lines of one name mean their values joined by commas.
    response = b"HTTP/1.1 200 OK\r\n%scontent-length: 1\r\n\r\nx" % fields
    async with (
        raw_server(answer_once(response, close=not reused)) as (uri, connections),
        httpx.AsyncClient(base_url=uri, transport=Http11Transport()) as client,
    ):
        for _ in range(2):
            assert (await client.get("/")).text == "x"
    assert len(connections) == (1 if reused else 2)


async def test_a_reset_during_a_close_delimited_body_is_a_read_error() -> None:
    # Without a length the body ends where the connection does; a reset (not a close) says
    # nothing about where it ended, so the part received is not an answer.
    async def reset_midway(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream, bytearray())
        await stream.send(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nthe first half")
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # Let the first half reach the client before the reset does (the claim holds either
        # way; this is what makes the close-delimited parse see a body to take for whole).
        await anyio.sleep(0.05)

    async with (
        raw_server(reset_midway) as (uri, _),
        httpx.AsyncClient(base_url=uri, transport=Http11Transport()) as client,
    ):
        with pytest.raises(httpx.ReadError):
            await client.get("/")


async def test_a_host_whose_first_address_fails_at_once_is_reached_at_the_next(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An IPv6 address on a host without IPv6 (or without a route to it) fails in connect()
    # itself, not once the connect completes; the next address must still be tried.
    async with raw_server(keep_alive) as (uri, _):
        port = int(uri.rsplit(":", 1)[1])

        async def two_addresses(host: str, port: int, **_: Any) -> list[Any]:
            assert host == "state-manager.test"
            return [
                (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("ff02::1", port, 0, 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            ]

        monkeypatch.setattr(anyio, "getaddrinfo", two_addresses)
        async with httpx.AsyncClient(transport=Http11Transport()) as client:
            response = await client.get(f"http://state-manager.test:{port}/here")
        assert response.text == "/here"


async def test_the_lean_path_reads_no_body_after_head() -> None:
    async with raw_server(answer_once(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n")) as (
        uri,
        _,
    ):
        transport = Http11Transport()
        sender = LeanSender(transport, uri + "/v0", [], httpx.Timeout(5.0))
        status, _, _, body = await sender.send("HEAD", "/x", None)
        await transport.aclose()
    assert (status, body) == (200, b"")


async def test_max_connections_counts_idle_connections_to_every_origin() -> None:
    both_in = anyio.Event()
    arrived: list[bytes] = []
    ended = anyio.Event()

    async def answer_in_pairs(stream: anyio.abc.SocketStream) -> None:
        buffer = bytearray()
        while request := await read_request(stream, buffer):
            arrived.append(request)
            if len(arrived) == 2:
                both_in.set()
            await both_in.wait()  # two requests at once: two connections
            await stream.send(ok(b"a"))
        ended.set()

    transport = Http11Transport(max_connections=2, max_keepalive_connections=2)
    async with (
        raw_server(answer_in_pairs) as (a, a_connections),
        raw_server(keep_alive) as (b, b_connections),
        httpx.AsyncClient(transport=transport) as client,
    ):
        async with anyio.create_task_group() as tg:
            for _ in range(2):
                tg.start_soon(client.get, a + "/")
        assert len(a_connections) == 2  # both idle now: the pool is full
        assert (await client.get(b + "/")).text == "/"
        with anyio.fail_after(10):  # a hang guard: without the room made, A's never ends
            await ended.wait()  # an idle connection to A was closed to make room for B's
        assert (await client.get(a + "/")).text == "a"  # the other one is still there
        assert (len(a_connections), len(b_connections)) == (2, 1)


async def test_max_keepalive_connections_counts_every_origin() -> None:
    ended = anyio.Event()

    async def serve_then_note_the_end(stream: anyio.abc.SocketStream) -> None:
        await keep_alive(stream)
        ended.set()

    transport = Http11Transport(max_keepalive_connections=1)
    async with (
        raw_server(keep_alive) as (a, a_connections),
        raw_server(serve_then_note_the_end) as (b, _),
        httpx.AsyncClient(transport=transport) as client,
    ):
        await client.get(a + "/")
        await client.get(b + "/")
        with anyio.fail_after(10):  # a hang guard: a kept connection never ends
            await ended.wait()  # B's connection was not kept: A's already fills the pool
        await client.get(a + "/")
        assert len(a_connections) == 1


async def test_truncated_response_is_a_remote_protocol_error() -> None:
    async def truncated(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream, bytearray())
        await stream.send(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")

    async with (
        raw_server(truncated) as (uri, _),
        httpx.AsyncClient(base_url=uri, transport=Http11Transport()) as client,
    ):
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")


async def test_no_answer_is_a_read_timeout() -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream, bytearray())
        await anyio.sleep_forever()

    async with (
        raw_server(silent) as (uri, _),
        httpx.AsyncClient(
            base_url=uri, transport=Http11Transport(), timeout=httpx.Timeout(5.0, read=0.05)
        ) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await client.get("/")


async def test_refused_connection_is_a_connect_error() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()  # nothing listens there now
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://127.0.0.1:{port}/")


async def test_https_is_refused() -> None:
    async with httpx.AsyncClient(transport=Http11Transport()) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get("https://127.0.0.1:1/")


def test_used_only_for_plain_http_without_a_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert lean_transport_suits("http://sm:8000")
    assert not lean_transport_suits("https://sm:8000")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy:3128")
    assert not lean_transport_suits("http://sm:8000")


# --- the runtime: one client for its life, connections reused ----------


async def test_runtime_uses_one_client_and_reuses_connections(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Registration, every poll and every report go through one AsyncClient and few sockets."""
    n, workers = 30, 2
    sm = FakeStateManager(clock=SystemClock())
    with sm.serve_in_thread() as uri:
        # The test's own client exists before counting starts.
        async with httpx.AsyncClient(base_url=uri, headers={"x-api-key": sm.api_key}) as setup:
            clients: list[httpx.AsyncClient] = []
            transports: list[Http11Transport] = []

            class CountingClient(httpx.AsyncClient):
                def __init__(self, *args: Any, **kwargs: Any) -> None:
                    super().__init__(*args, **kwargs)
                    clients.append(self)

            class CountingTransport(Http11Transport):
                def __init__(self, **kwargs: Any) -> None:
                    super().__init__(**kwargs)
                    transports.append(self)

            monkeypatch.setattr(httpx, "AsyncClient", CountingClient)
            monkeypatch.setattr(exo_ref._runtime_client, "Http11Transport", CountingTransport)
            runtime = Runtime(
                NAMESPACE,
                "rt",
                [Fan, EchoNode],
                state_manager_uri=uri,
                key=sm.api_key,
                workers=workers,
                batch_size=4,
                poll_interval=0.01,
            )
            async with anyio.create_task_group() as tg:
                tg.start_soon(runtime.run)
                with anyio.fail_after(30):  # deadlock guard, not a time limit
                    # The server runs in another thread: nothing to await but its log.
                    while not any(r.path.endswith("/states/enqueue") for r in list(sm.requests)):  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                    await _fan_out(setup, n)
                    while sum(r.path.endswith("/executed") for r in list(sm.requests)) < n + 1:  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                runtime.stop()
    assert len(clients) == 1
    assert len(transports) == 1
    sent = [
        r
        for r in sm.requests
        if r.path.startswith(f"/v0/namespace/{NAMESPACE}/")
        and not r.path.endswith(("/trigger", "/graph/g"))
    ]
    assert len(sent) > n + 2  # registration, polls and n + 1 reports...
    assert transports[0].connections_opened <= workers + 2  # ...over a handful of connections


async def _fan_out(client: httpx.AsyncClient, n: int) -> None:
    """Upsert ``Fan -> EchoNode``, wait until VALID, trigger with ``n`` (contract §4, §3.4)."""
    nodes = [
        graph_node("fan", "Fan", {"n": str(n)}, ["echo"]),
        graph_node("echo", "EchoNode", {"text": "${{ fan.outputs.i }}"}),
    ]
    response = await client.put(
        f"/v0/namespace/{NAMESPACE}/graph/g", json={"secrets": {}, "nodes": nodes}
    )
    assert response.status_code == 201, response.text
    url = f"/v0/namespace/{NAMESPACE}/graph/g"
    while (await client.get(url)).json()["validation_status"] != "VALID":  # noqa: ASYNC110
        await anyio.sleep(0.01)  # background verification (§4.4) has no event to await
    response = await client.post(f"/v0/namespace/{NAMESPACE}/graph/g/trigger", json={"inputs": {}})
    assert response.status_code == 200, response.text


# --- the client's lean path on this transport (exo_ref._h11_transport.LeanSender) ------------


def direct_client(uri: str, *, read: float = 5.0) -> StateManagerClient:
    return StateManagerClient(
        client_settings(uri, httpx.Timeout(5.0, read=read)),
        transport=Http11Transport(),
        owns_transport=True,
        clock=ManualClock(),
        rng=random.Random(0),
    )


async def test_direct_polls_send_the_key_and_json_and_parse_the_answer() -> None:
    seen: list[bytes] = []

    async def answer(stream: anyio.abc.SocketStream) -> None:
        buffer = bytearray()
        while request := await read_request(stream, buffer):
            seen.append(request)
            await stream.send(
                ok(
                    b'{"namespace": "ns", "count": 0, "states": []}',
                    b"content-type: application/json",
                )
            )

    async with raw_server(answer) as (uri, _), direct_client(uri) as client:
        assert await client.enqueue(["EchoNode"], 3) == []
    head, _, body = seen[0].partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"post /v0/namespace/ns/states/enqueue http/1.1"
    assert f"x-api-key: {KEY}".lower().encode() in lines
    assert b"content-type: application/json" in lines
    assert json.loads(body) == {"nodes": ["EchoNode"], "batch_size": 3}


async def test_direct_poll_without_an_answer_is_a_timeout_error() -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream, bytearray())
        await anyio.sleep_forever()

    async with raw_server(silent) as (uri, _), direct_client(uri, read=0.05) as client:
        with pytest.raises(StateManagerTimeoutError, match="POST /states/enqueue"):
            await client.enqueue(["EchoNode"], 1)


async def test_direct_poll_refused_is_unavailable_without_the_key() -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    async with direct_client(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(StateManagerUnavailableError) as caught:
            await client.enqueue(["EchoNode"], 1)
    assert KEY not in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_direct_error_status_is_a_state_manager_error() -> None:
    async def refuse(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream, bytearray())
        await stream.send(
            b'HTTP/1.1 401 Unauthorized\r\ncontent-length: 27\r\n\r\n{"detail": "Invalid API k"}'
        )

    async with raw_server(refuse) as (uri, _), direct_client(uri) as client:
        with pytest.raises(AuthenticationError, match="401"):
            await client.enqueue(["EchoNode"], 1)


# --- the lean path's framing and failures (StateManagerClient on its own Http11Transport) -----


def answer_once(response: bytes, *, close: bool = False) -> Serve:
    """A server answering every request with ``response`` (closing afterwards if ``close``)."""

    async def serve(stream: anyio.abc.SocketStream) -> None:
        buffer = bytearray()
        while await read_request(stream, buffer):
            await stream.send(response)
            if close:
                return

    return serve


EMPTY_POLL = b'{"namespace": "ns", "count": 0, "states": []}'


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(ok(EMPTY_POLL), id="content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\n" + EMPTY_POLL[:5] + b"\r\n"
            + b"%x;ext=1\r\n" % (len(EMPTY_POLL) - 5) + EMPTY_POLL[5:] + b"\r\n"
            b"0\r\nx-trailer: t\r\n\r\n",
            id="chunked-with-extension-and-trailer",
        ),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\n" + ok(EMPTY_POLL), id="informational-first"
        ),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(EMPTY_POLL), EMPTY_POLL),
            id="http-1.0",
        ),
    ],
)
async def test_lean_path_reads_each_framing(response: bytes) -> None:
    async with raw_server(answer_once(response)) as (uri, _), direct_client(uri) as client:
        for _ in range(3):
            assert await client.enqueue(["EchoNode"], 1) == []


async def test_lean_path_reads_a_body_delimited_by_close_and_reconnects() -> None:
    response = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + EMPTY_POLL
    async with (
        raw_server(answer_once(response, close=True)) as (uri, connections),
        direct_client(uri) as client,
    ):
        for _ in range(3):
            assert await client.enqueue(["EchoNode"], 1) == []
    assert len(connections) == 3


async def test_lean_path_keeps_one_connection_across_requests() -> None:
    async with (
        raw_server(answer_once(ok(EMPTY_POLL))) as (uri, connections),
        direct_client(uri) as client,
    ):
        for _ in range(5):
            await client.enqueue(["EchoNode"], 1)
            await client.report_executed("abc123", [{"text": "x"}])
    assert len(connections) == 1


async def test_lean_path_arrives_in_pieces() -> None:
    async def trickle(stream: anyio.abc.SocketStream) -> None:
        buffer = bytearray()
        while await read_request(stream, buffer):
            for k in range(0, len(data := ok(EMPTY_POLL)), 7):
                await stream.send(data[k : k + 7])
                await anyio.sleep(0.001)

    async with raw_server(trickle) as (uri, _), direct_client(uri) as client:
        assert await client.enqueue(["EchoNode"], 1) == []
        assert await client.enqueue(["EchoNode"], 1) == []


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc", id="truncated"),
        pytest.param(b"ICY 200 OK\r\n\r\n", id="bad-status-line"),
        pytest.param(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", id="bad-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            id="conflicting-lengths",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk"
        ),
        # RFC 9112 section 7.1: a chunk size is hex digits only (int(..., 16) takes more).
        *(
            pytest.param(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n%s\r\n%s\r\n0\r\n\r\n"
                % (size, b"x" * int(size, 16)),
                id=f"chunk-size-{size.decode()}",
            )
            for size in (b"0x3", b"1_0", b"+5", b"-0")
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\n", id="head-cut-short"),
    ],
)
async def test_lean_path_malformed_answer_is_unavailable_and_not_reused(response: bytes) -> None:
    async with (
        raw_server(answer_once(response, close=True)) as (uri, connections),
        direct_client(uri) as client,
    ):
        for _ in range(2):
            with pytest.raises(StateManagerUnavailableError, match="RemoteProtocolError"):
                await client.enqueue(["EchoNode"], 1)
    assert len(connections) == 2


async def test_lean_path_error_status_reads_detail_and_retry_after() -> None:
    body = b'{"detail": "slow down"}'
    response = (
        b"HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
        b"Retry-After: 7\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )
    async with raw_server(answer_once(response)) as (uri, _), direct_client(uri) as client:
        with pytest.raises(StateManagerError) as caught:
            await client.enqueue(["EchoNode"], 1)
    assert caught.value.status_code == 429
    assert caught.value.detail == "slow down"
    assert caught.value.retry_after == "7"


async def test_lean_path_malformed_poll_answer_is_invalid_response() -> None:
    async with (
        raw_server(answer_once(ok(b'{"states": [{"state_id": 1}]}'))) as (uri, _),
        direct_client(uri) as client,
    ):
        with pytest.raises(InvalidResponseError, match="unexpected body"):
            await client.enqueue(["EchoNode"], 1)


async def test_lean_path_sends_reports_as_json_with_the_state_in_the_path() -> None:
    seen: list[bytes] = []

    async def record(stream: anyio.abc.SocketStream) -> None:
        buffer = bytearray()
        while request := await read_request(stream, buffer):
            seen.append(request)
            secrets = request.split(b" ", 2)[1].endswith(b"/secrets")
            await stream.send(ok(b'{"secrets": {"a": "b"}}' if secrets else b'{"status": "OK"}'))

    async with raw_server(record) as (uri, _), direct_client(uri) as client:
        await client.report_executed("s1", [{"text": "é"}])
        await client.report_errored("odd id/with space", "boom")
        await client.report_re_enqueue_after("s3", 0)
        await client.report_prune("s4", {"n": 1})
        assert await client.secrets("s5") == {"a": "b"}
    lines = [request.partition(b"\r\n")[0] for request in seen]
    assert lines == [
        b"POST /v0/namespace/ns/state/s1/executed HTTP/1.1",
        b"POST /v0/namespace/ns/state/odd%20id/with%20space/errored HTTP/1.1",
        b"POST /v0/namespace/ns/state/s3/re-enqueue-after HTTP/1.1",
        b"POST /v0/namespace/ns/state/s4/prune HTTP/1.1",
        b"GET /v0/namespace/ns/state/s5/secrets HTTP/1.1",
    ]
    assert b"content-length" not in seen[4].lower()
    bodies = [json.loads(request.partition(b"\r\n\r\n")[2]) for request in seen[:4]]
    assert bodies == [
        {"outputs": [{"text": "é"}]},
        {"error": "boom"},
        {"enqueue_after": 1},
        {"data": {"n": 1}},
    ]


async def test_a_request_the_server_does_not_read_is_a_write_timeout() -> None:
    # A listening socket nobody accepts from: the connection is made, nothing is ever read.
    with socket.socket() as deaf:
        deaf.bind(("127.0.0.1", 0))
        deaf.listen()
        uri = f"http://127.0.0.1:{deaf.getsockname()[1]}"
        async with httpx.AsyncClient(
            base_url=uri, transport=Http11Transport(), timeout=httpx.Timeout(5.0, read=0.2)
        ) as client:
            with pytest.raises(httpx.WriteTimeout):
                await client.post("/", content=b"x" * 50_000_000)


async def test_no_free_connection_is_a_pool_timeout() -> None:
    async def silent(stream: anyio.abc.SocketStream) -> None:
        await read_request(stream, bytearray())
        await anyio.sleep_forever()

    transport = Http11Transport(max_connections=1)
    async with (
        raw_server(silent) as (uri, _),
        httpx.AsyncClient(
            base_url=uri, transport=transport, timeout=httpx.Timeout(5.0, pool=0.05)
        ) as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(client.get, "/")  # holds the only connection, never answered
        await anyio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("/")
        tg.cancel_scope.cancel()


class ThreadServer:
    """A keep-alive echo server on blocking sockets in threads: it outlives event loops, so
    one transport's connections can be offered to several ``anyio.run`` calls."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.origin = ("127.0.0.1", self.listener.getsockname()[1])
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        chunk = conn.recv(65536)
                    except OSError:
                        return
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                conn.sendall(ok(head.split(b" ")[1]))

    def close(self) -> None:
        self.listener.close()


def test_a_trio_connection_is_reused_by_a_later_trio_run_but_not_by_an_asyncio_run() -> None:
    # A trio connection is a plain socket that any trio run can wait on, but no asyncio run.
    # Each asyncio run closes its own connection before its event loop ends (its last request
    # says so): an asyncio connection cannot be closed once its loop is gone.
    server = ThreadServer()
    transport = Http11Transport()
    request = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n"

    async def ask(backend: str) -> None:
        for reuse in (True, backend != "asyncio"):
            status, _, _, body = await transport.exchange(
                server.origin, request, (5.0,) * 4, reuse=reuse
            )
            assert (status, body) == (200, b"/a")

    try:
        for backend in ("asyncio", "trio", "trio", "asyncio"):
            anyio.run(ask, backend, backend=backend)
        # asyncio, trio (kept by the next trio run, refused by the asyncio one), asyncio
        assert transport.connections_opened == server.connections == 3
    finally:
        server.close()


async def test_lean_path_notices_an_outage_and_its_end() -> None:
    # Re-registration evidence (exo_ref._runtime_client): refused while down, then an answer.
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    uri = f"http://127.0.0.1:{port}"

    async with direct_client(uri) as client:
        client._registration = b"{}"  # as if registered before the outage
        with pytest.raises(StateManagerUnavailableError):
            await client.enqueue(["EchoNode"], 1)
        assert client.registration_lost is None  # still down: nothing to conclude yet
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
        async with listener, anyio.create_task_group() as tg:

            async def handle(stream: anyio.abc.SocketStream) -> None:
                async with stream:
                    await answer_once(ok(EMPTY_POLL))(stream)

            tg.start_soon(listener.serve, handle)
            assert await client.enqueue(["EchoNode"], 1) == []
            tg.cancel_scope.cancel()
    assert client.registration_lost is not None
    assert "after an outage" in client.registration_lost

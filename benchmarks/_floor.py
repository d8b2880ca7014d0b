"""The floor: a bare HTTP loop that drains like a runtime, with no runtime machinery.

One poller task and ``workers`` reporter tasks share one way to send (below). The poller keeps
the buffer of claimed states from running dry: whenever fewer than ``workers`` are waiting it asks
for ``batch_size`` minus what is waiting, and it never sleeps. Each reporter takes a state and
reports it executed with one output. The requests are the same as a runtime's (contract §8.3:
``states/enqueue`` and ``state/{id}/executed``), with the same concurrency and pipelining. There is
no validation, no node instance, no retry and no logging, so no runtime can beat it by much on
the same transport.

It sends with a :data:`Post`. :func:`floor_post` picks the way exo_ref's own polls and reports
go, without ``httpx.AsyncClient``'s per-request layer, through public API only: encoded by hand
and sent with :meth:`exo_ref.Http11Transport.exchange` over loopback (:func:`lean_post`, what the
runtime's ``LeanSender`` does), the fake's ASGI app called directly in process
(:func:`asgi_post`, what its ``AsgiSender`` does). So the floor uses the same HTTP path as the
runtime it bounds. Elsewhere it goes through the harness's ``httpx.AsyncClient``
(:func:`client_post`). ``bench_fake_served.py`` drives the dev server with the same loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio
import httpx

from exo_ref import Http11Transport

#: ``post(path under /v0/namespace/{ns}, JSON body) -> (status, body)``.
Post = Callable[[str, bytes], Awaitable[tuple[int, bytes]]]


def floor_post(
    *, uri: str, ns: str, key: str, direct: httpx.AsyncBaseTransport | None,
    transport: httpx.AsyncBaseTransport | None, client: httpx.AsyncClient,
) -> Post:
    """The runtime's hot path for a benchmark target (else through ``client``)."""
    if isinstance(direct, Http11Transport):
        return lean_post(direct, uri=uri, ns=ns, key=key)
    if type(transport) is httpx.ASGITransport:
        return asgi_post(transport, uri=uri, ns=ns, key=key)
    return client_post(client, ns)


def client_post(client: httpx.AsyncClient, ns: str) -> Post:
    """POST through ``httpx.AsyncClient`` (its base URL and headers)."""
    prefix = f"/v0/namespace/{ns}"
    headers = {"content-type": "application/json"}

    async def post(path: str, body: bytes) -> tuple[int, bytes]:
        response = await client.post(prefix + path, content=body, headers=headers)
        return response.status_code, response.content

    return post


def lean_post(transport: Http11Transport, *, uri: str, ns: str, key: str) -> Post:
    """POST with :meth:`exo_ref.Http11Transport.exchange`, encoded by hand (``LeanSender``)."""
    url, prefix = _namespace_url(uri, ns)
    origin = (url.host, url.port or 80)
    fixed = b"host: %s\r\nx-api-key: %s\r\ncontent-type: application/json\r\n" % (
        url.netloc, key.encode("ascii"))
    timeouts = (60.0, 60.0, 60.0, 60.0)  # connect, answer, pool, write

    async def post(path: str, body: bytes) -> tuple[int, bytes]:
        data = b"POST %s HTTP/1.1\r\n%scontent-length: %d\r\n\r\n%s" % (
            prefix + path.encode("ascii"), fixed, len(body), body)
        status, _, _, content = await transport.exchange(origin, data, timeouts)
        return status, content

    return post


def asgi_post(transport: httpx.ASGITransport, *, uri: str, ns: str, key: str) -> Post:
    """Call ``transport``'s ASGI app directly, no HTTP client (``AsgiSender``)."""
    url, prefix = _namespace_url(uri, ns)
    app = transport.app
    headers = [(b"host", url.netloc), (b"x-api-key", key.encode("ascii")),
               (b"content-type", b"application/json")]

    async def post(path: str, body: bytes) -> tuple[int, bytes]:
        raw_path = prefix + path.encode("ascii")
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": url.scheme, "path": raw_path.decode("ascii"),
            "raw_path": raw_path, "query_string": b"", "server": (url.host, url.port),
            "client": transport.client, "root_path": transport.root_path,
            "headers": [*headers, (b"content-length", b"%d" % len(body))],
        }
        unread = [body]
        status = [500]
        parts: list[bytes] = []

        async def receive() -> dict[str, Any]:
            if unread:
                return {"type": "http.request", "body": unread.pop(), "more_body": False}
            return {"type": "http.disconnect"}

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await app(scope, receive, send)
        return status[0], b"".join(parts)

    return post


def _namespace_url(uri: str, ns: str) -> tuple[httpx.URL, bytes]:
    url = httpx.URL(f"{uri}/v0/namespace/{ns}")
    return url, url.raw_path.rstrip(b"/")


async def drain_floor(post: Post, node: str, *, batch_size: int, workers: int) -> int:
    """Drain every claimable ``node`` state of the namespace ``post`` sends to; return how many
    were reported."""

    async def call(path: str, body: bytes) -> Any:
        status, content = await post(path, body)
        if status >= 300:
            raise AssertionError(f"POST {path} answered {status}: {content[:200]!r}")
        return json.loads(content)

    send, receive = anyio.create_memory_object_stream[str](math.inf)
    room = anyio.Event()
    reported = 0
    report = json.dumps({"outputs": [{"o": "done"}]}).encode()

    def waiting() -> int:
        return receive.statistics().current_buffer_used

    async def poller() -> None:
        nonlocal room
        async with send:
            while True:
                while waiting() >= workers:
                    room = anyio.Event()
                    await room.wait()
                body = {"nodes": [node], "batch_size": batch_size - waiting()}
                states = (await call("/states/enqueue", json.dumps(body).encode()))["states"]
                if not states:
                    return  # everything was prepared up front: nothing more will appear
                for state in states:
                    send.send_nowait(state["state_id"])

    async def reporter() -> None:
        nonlocal reported
        async for state_id in receive:  # ends when the poller closes `send` and it is empty
            if waiting() < workers:
                room.set()
            await call(f"/state/{state_id}/executed", report)
            reported += 1

    async with receive, anyio.create_task_group() as tg:
        tg.start_soon(poller)
        for _ in range(workers):
            tg.start_soon(reporter)
    return reported

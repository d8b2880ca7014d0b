"""The floor: a bare HTTP loop that drains like a runtime, with no runtime machinery.

One poller task and ``workers`` reporter tasks share one way to send (below). The poller keeps
the buffer of claimed states from running dry: whenever fewer than ``workers`` are waiting it asks
for ``batch_size`` minus what is waiting, and it never sleeps. Each reporter takes a state and
reports it executed with one output. The requests are the same as a runtime's (contract §8.3:
``states/enqueue`` and ``state/{id}/executed``), with the same concurrency and pipelining. There is
no validation, no node instance, no retry and no logging, so no runtime can beat it by much on
the same transport.

With ``sender`` (:func:`floor_post`) the requests go out the way exo_ref's own polls and reports
do, without ``httpx.AsyncClient``'s per-request layer, through public API only: encoded by hand
and sent with :meth:`exo_ref.Http11Transport.exchange` over loopback (what the runtime's
``LeanSender`` does), the fake's ASGI app called directly in process (what its ``AsgiSender``
does). So the floor uses the same HTTP path as the runtime it bounds. Without one it goes through
the harness's ``httpx.AsyncClient``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import httpx

from exo_ref import Http11Transport

#: ``post(path under /v0/namespace/{ns}, JSON body) -> (status, body)``.
Post = Callable[[str, bytes], Awaitable[tuple[int, bytes]]]


def floor_post(
    *, uri: str, ns: str, key: str, direct: httpx.AsyncBaseTransport | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Post | None:
    """The runtime's hot path for a benchmark target (None: use the ``AsyncClient``)."""
    url = httpx.URL(f"{uri}/v0/namespace/{ns}")
    prefix = url.raw_path.rstrip(b"/")
    if isinstance(direct, Http11Transport):
        return _lean_post(direct, url, prefix, key)
    if type(transport) is httpx.ASGITransport:
        return _asgi_post(transport, url, prefix, key)
    return None


def _lean_post(transport: Http11Transport, url: httpx.URL, prefix: bytes, key: str) -> Post:
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


def _asgi_post(transport: httpx.ASGITransport, url: httpx.URL, prefix: bytes, key: str) -> Post:
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

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await app(scope, receive, send)
        return status[0], b"".join(parts)

    return post


async def drain_floor(
    client: httpx.AsyncClient,
    ns: str,
    node: str,
    *,
    batch_size: int,
    workers: int,
    sender: Post | None = None,
) -> int:
    """Drain every claimable ``node`` state of ``ns``; return how many were reported."""
    prefix = f"/v0/namespace/{ns}"

    async def post(path: str, body: dict[str, Any]) -> Any:
        if sender is None:
            response = await client.post(prefix + path, json=body)
            response.raise_for_status()
            return response.json()
        status, content = await sender(path, json.dumps(body).encode())
        if status >= 300:
            raise AssertionError(f"POST {path} answered {status}: {content[:200]!r}")
        return json.loads(content)

    send, receive = anyio.create_memory_object_stream[dict[str, Any]](math.inf)
    room = anyio.Event()
    reported = 0

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
                states = (await post("/states/enqueue", body))["states"]
                if not states:
                    return  # everything was prepared up front: nothing more will appear
                for state in states:
                    send.send_nowait(state)

    async def reporter() -> None:
        nonlocal reported
        async for state in receive:  # ends when the poller closes `send` and it is empty
            if waiting() < workers:
                room.set()
            await post(f"/state/{state['state_id']}/executed", {"outputs": [{"o": "done"}]})
            reported += 1

    async with receive, anyio.create_task_group() as tg:
        tg.start_soon(poller)
        for _ in range(workers):
            tg.start_soon(reporter)
    return reported

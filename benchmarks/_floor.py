"""The floor: a bare HTTP loop that drains like a runtime, with no runtime machinery.

One poller task and ``workers`` reporter tasks share one sender (below). The poller keeps
the buffer of claimed states from running dry: whenever fewer than ``workers`` are waiting it asks
for ``batch_size`` minus what is waiting, and it never sleeps. Each reporter takes a state and
reports it executed with one output. The requests are the same as a runtime's (contract §8.3:
``states/enqueue`` and ``state/{id}/executed``), with the same concurrency and pipelining. There is
no validation, no node instance, no retry and no logging, so no runtime can beat it by much on
the same transport.

With ``sender`` the requests go out the way exo_ref's own polls and reports do, without
``AsyncClient``'s per-request layer: :class:`exo_ref._h11_transport.LeanSender` over loopback,
:class:`exo_ref._calls.AsgiSender` in process (:func:`floor_sender` makes the one that suits a
target), so the floor uses the same HTTP path as the runtime it bounds. Without one it goes
through the harness's ``httpx.AsyncClient``.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import httpx

from exo_ref._calls import AsgiSender, Sender
from exo_ref._h11_transport import Http11Transport, LeanSender

JSON_HEADERS = [("content-type", "application/json")]


def floor_sender(
    *, uri: str, ns: str, key: str, direct: httpx.AsyncBaseTransport | None,
    transport: httpx.AsyncBaseTransport | None,
) -> Sender | None:
    """The runtime's hot-path sender for a benchmark target (None: use the ``AsyncClient``)."""
    prefix = f"{uri}/v0/namespace/{ns}"
    headers = [("x-api-key", key), *JSON_HEADERS]
    if isinstance(direct, Http11Transport):
        return LeanSender(direct, prefix, headers, httpx.Timeout(60))
    if type(transport) is httpx.ASGITransport:
        return AsgiSender(transport, prefix, headers)
    return None


async def drain_floor(
    client: httpx.AsyncClient,
    ns: str,
    node: str,
    *,
    batch_size: int,
    workers: int,
    sender: Sender | None = None,
) -> int:
    """Drain every claimable ``node`` state of ``ns``; return how many were reported."""
    prefix = f"/v0/namespace/{ns}"

    async def post(path: str, body: dict[str, Any]) -> Any:
        if sender is None:
            response = await client.post(prefix + path, json=body)
            response.raise_for_status()
            return response.json()
        status, _, _, content = await sender.send("POST", path, json.dumps(body).encode())
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

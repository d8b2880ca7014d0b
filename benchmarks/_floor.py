"""The floor: a bare httpx loop that drains like a runtime, with no runtime machinery.

One poller task and ``workers`` reporter tasks share one ``httpx.AsyncClient``. The poller keeps
the buffer of claimed states from running dry: whenever fewer than ``workers`` are waiting it asks
for ``batch_size`` minus what is waiting, and it never sleeps. Each reporter takes a state and
reports it executed with one output. The requests are the same as a runtime's (contract §8.3:
``states/enqueue`` and ``state/{id}/executed``), with the same concurrency and pipelining. There is
no validation, no node instance, no retry and no logging, so no runtime can beat it by much on
the same transport.

With ``direct`` (exo_ref's plain-HTTP transport, over loopback) the requests go straight to the
transport, skipping ``AsyncClient``'s per-request layer, as exo_ref's own polls and reports do
(``exo_ref._calls.send_direct``): the floor uses the same HTTP path as the runtime it bounds.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import httpx


async def drain_floor(
    client: httpx.AsyncClient,
    ns: str,
    node: str,
    *,
    batch_size: int,
    workers: int,
    direct: httpx.AsyncBaseTransport | None = None,
) -> int:
    """Drain every claimable ``node`` state of ``ns``; return how many were reported."""
    enqueue_url = f"/v0/namespace/{ns}/states/enqueue"
    base = str(client.base_url).rstrip("/")
    headers = httpx.Headers({**client.headers, "content-type": "application/json"})
    timeouts = {"timeout": client.timeout.as_dict()}

    async def post(url: str, body: dict[str, Any]) -> httpx.Response:
        if direct is None:
            return await client.post(url, json=body)
        request = httpx.Request("POST", base + url, headers=headers,
                                content=json.dumps(body), extensions=timeouts)
        response = await direct.handle_async_request(request)
        await response.aread()
        response.request = request
        return response

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
                response = await post(enqueue_url, body)
                response.raise_for_status()
                states = response.json()["states"]
                if not states:
                    return  # everything was prepared up front: nothing more will appear
                for state in states:
                    send.send_nowait(state)

    async def reporter() -> None:
        nonlocal reported
        async for state in receive:  # ends when the poller closes `send` and it is empty
            if waiting() < workers:
                room.set()
            response = await post(
                f"/v0/namespace/{ns}/state/{state['state_id']}/executed",
                {"outputs": [{"o": "done"}]},
            )
            response.raise_for_status()
            reported += 1

    async with receive, anyio.create_task_group() as tg:
        tg.start_soon(poller)
        for _ in range(workers):
            tg.start_soon(reporter)
    return reported

"""The floor: a bare httpx loop that drains like a runtime, with no runtime machinery.

``workers`` tasks share one ``httpx.AsyncClient`` and a list of claimed states. A task with
nothing to do claims the next batch (one poll at a time, guarded by a lock, ``batch_size`` states
per poll, never a sleep), then reports its state executed with one output. No validation, no
node instances, no queues, no retries, no logging: the same requests as a runtime (contract §8.3:
``states/enqueue`` and ``state/{id}/executed``) with the same concurrency, as fast as the client
and the state manager allow. No runtime can beat it by much on the same transport.
"""

from __future__ import annotations

import anyio
import httpx


async def drain_floor(
    client: httpx.AsyncClient, ns: str, node: str, *, batch_size: int, workers: int
) -> int:
    """Drain every claimable ``node`` state of ``ns``; return how many were reported."""
    enqueue_url = f"/v0/namespace/{ns}/states/enqueue"
    poll_body = {"nodes": [node], "batch_size": batch_size}
    claimed: list[dict[str, object]] = []
    lock = anyio.Lock()
    done = False
    reported = 0

    async def worker() -> None:
        nonlocal done, reported
        while True:
            if not claimed:
                async with lock:
                    if not claimed and not done:
                        response = await client.post(enqueue_url, json=poll_body)
                        response.raise_for_status()
                        states = response.json()["states"]
                        if states:
                            claimed.extend(states)
                        else:
                            done = True
                if not claimed:
                    if done:
                        return
                    continue
            state = claimed.pop()
            response = await client.post(
                f"/v0/namespace/{ns}/state/{state['state_id']}/executed",
                json={"outputs": [{"o": "done"}]},
            )
            response.raise_for_status()
            reported += 1

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(worker)
    return reported

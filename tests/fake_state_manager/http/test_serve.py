"""The fake over real HTTP: uvicorn on loopback in a thread (``serve_in_thread``)."""

from __future__ import annotations

import socket

import anyio
import httpx
import pytest

from fake_state_manager import FakeStateManager, ManualClock, SystemClock
from fake_state_manager._http.serve import serve_in_thread
from tests.builders import graph_node

from ..http_support import KEY, PREFIX, START, claim, ok, registration, setup_graph, trigger

STATES = 120
CALLERS = 50


async def test_concurrent_enqueues_over_tcp_claim_every_state_exactly_once() -> None:
    # contract §3.3: claiming is atomic; 50 pollers at once never get the same state twice.
    sm = FakeStateManager(api_key=KEY, clock=SystemClock(), record_requests=False)
    async with sm, sm.client() as local:
        await setup_graph(local, [registration("A")], [graph_node("a", "A")])
        for _ in range(STATES):
            await trigger(local)
        with sm.serve_in_thread() as uri:
            assert uri.startswith("http://127.0.0.1:")
            claimed: list[str] = []
            limits = httpx.Limits(max_connections=CALLERS)
            async with httpx.AsyncClient(
                base_url=uri, headers={"x-api-key": KEY}, limits=limits
            ) as remote:

                async def poll() -> None:
                    body = await ok(
                        remote.post(
                            f"{PREFIX}/states/enqueue", json={"nodes": ["A"], "batch_size": 3}
                        )
                    )
                    claimed.extend(s["state_id"] for s in body["states"])

                async with anyio.create_task_group() as tg:
                    for _ in range(CALLERS):
                        tg.start_soon(poll)
        sm.engine.check_invariants()
    assert len(claimed) == STATES
    assert len(set(claimed)) == STATES


async def test_served_fake_answers_health_and_finishes_a_run_for_wait_for_run() -> None:
    sm = FakeStateManager(api_key=KEY)
    with sm.serve_in_thread(port=0) as uri:
        async with httpx.AsyncClient(base_url=uri, headers={"x-api-key": KEY}) as remote:
            assert (await ok(remote.get("/health"))) == {"message": "OK"}
            await setup_graph(remote, [registration("A")], [graph_node("a", "A")])
            run_id = await trigger(remote)
            body = await ok(
                remote.post(f"{PREFIX}/states/enqueue", json={"nodes": ["A"], "batch_size": 1})
            )
            (state,) = body["states"]

            async def finish() -> None:
                await ok(
                    remote.post(
                        f"{PREFIX}/state/{state['state_id']}/executed", json={"outputs": [{}]}
                    )
                )

            async with anyio.create_task_group() as tg:
                tg.start_soon(finish)
                summary = await sm.wait_for_run(run_id, timeout=10)
            assert summary["status"] == "SUCCESS"
            assert sm.requests[-1].path == f"{PREFIX}/state/{state['state_id']}/executed"


def test_serve_in_thread_reports_a_port_in_use() -> None:
    sm = FakeStateManager(api_key=KEY)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with (
            pytest.raises(RuntimeError, match="could not start"),
            serve_in_thread(sm.app, port=port),
        ):
            pass


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_serve_in_this_loop_works_with_a_manual_clock() -> None:
    # FakeStateManager.serve: no thread, so the caller's ManualClock drives what is served.
    clock = ManualClock(START, auto_advance=False)
    sm = FakeStateManager(api_key=KEY, clock=clock)
    headers = {"x-api-key": KEY}
    async with sm, sm.serve() as uri, httpx.AsyncClient(base_url=uri, headers=headers) as remote:
        await setup_graph(remote, [registration("A")], [graph_node("a", "A")])
        await trigger(remote, start_delay=60_000)
        assert await claim(remote, "A") == []
        clock.advance(60)
        assert len(await claim(remote, "A")) == 1
    with pytest.raises(httpx.ConnectError):  # stopped with the context
        async with httpx.AsyncClient(base_url=uri) as late:
            await late.get("/health")


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_serve_in_this_loop_says_it_needs_asyncio() -> None:
    sm = FakeStateManager(api_key=KEY)
    with pytest.raises(RuntimeError, match="it needs asyncio"):
        async with sm.serve():
            pass

"""End-to-end flows over HTTP (in-process transport, asyncio and trio): unites with both
strategies (contract §3.5), store values in next states (§3.5 step 3c), seeded retry jitter (§5),
and the unchecked path namespace of ``executed`` (§2.8)."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest

from tests.builders import graph_node

from ..http_support import (
    PREFIX,
    claim,
    executed,
    ok,
    registration,
    running,
    setup_graph,
    trigger,
)


async def fan_in_graph(client: httpx.AsyncClient, strategy: str) -> None:
    """r -> s (fans out) -> w -> m, where m unites on the ancestor r (§3.5 consequences)."""
    await setup_graph(
        client,
        [
            registration("R"),
            registration("S", outputs=("item",)),
            registration("W", ("item",)),
            registration("M"),
        ],
        [
            graph_node("r", "R", next_nodes=["s"]),
            graph_node("s", "S", next_nodes=["w"]),
            graph_node("w", "W", {"item": "${{ s.outputs.item }}"}, next_nodes=["m"]),
            graph_node("m", "M", unites={"identifier": "r", "strategy": strategy}),
        ],
        retry_policy={"max_retries": 0},
    )


async def three_workers(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    (root,) = await claim(client, "R")
    await executed(client, root["state_id"], [])
    (splitter,) = await claim(client, "S")
    await executed(client, splitter["state_id"], [{"item": str(i)} for i in range(3)])
    workers = await claim(client, "W")
    assert len(workers) == 3
    return workers


async def finish(client: httpx.AsyncClient, state_id: str, how: str) -> None:
    if how == "ok":
        await executed(client, state_id, [])
    elif how == "error":
        body = await ok(client.post(f"{PREFIX}/state/{state_id}/errored", json={"error": "no"}))
        assert body == {"status": "ERRORED", "retry_created": False}
    else:
        await ok(client.post(f"{PREFIX}/state/{state_id}/prune", json={"data": {}}))


@pytest.mark.parametrize(
    ("strategy", "outcomes", "merged"),
    [
        pytest.param("ALL_SUCCESS", ["ok", "ok", "ok"], True, id="all-success"),
        pytest.param("ALL_SUCCESS", ["error", "ok", "ok"], False, id="all-success-errored"),
        pytest.param("ALL_DONE", ["error", "prune", "ok"], True, id="all-done-failed-first"),
        pytest.param("ALL_DONE", ["ok", "ok", "error"], False, id="all-done-blocked-by-errored"),
    ],
)
async def test_unites_strategies_over_http(
    strategy: str, outcomes: list[str], merged: bool
) -> None:
    async with running() as (sm, client):
        await fan_in_graph(client, strategy)
        run_id = await trigger(client)
        workers = await three_workers(client)
        for worker, how in zip(workers, outcomes, strict=True):
            assert await claim(client, "M") == []  # never before the last branch finishes
            await finish(client, worker["state_id"], how)
        mergers = await claim(client, "M")
        assert len(mergers) == (1 if merged else 0)
        if merged:
            await executed(client, mergers[0]["state_id"], [])
        summary = await sm.wait_for_run(run_id)
        failed = "error" in outcomes
        assert summary["status"] == ("FAILED" if failed else "SUCCESS")
        assert summary["total_count"] == 1 + 3 + 3 + (1 if merged else 0)


async def test_next_states_read_the_run_store_then_default_values() -> None:
    async with running() as (_, client):
        await setup_graph(
            client,
            [registration("A"), registration("B", ("s", "d"))],
            [
                graph_node("a", "A", next_nodes=["b"]),
                graph_node("b", "B", {"s": "${{ store.k }}", "d": "${{ store.dk }}", "x": "drop"}),
            ],
            store_config={"required_keys": ["k"], "default_values": {"dk": "dv"}},
        )
        await trigger(client, store={"k": "given"})
        (root,) = await claim(client, "A")
        await executed(client, root["state_id"], [{}])
        (child,) = await claim(client, "B")
    assert child["inputs"] == {"s": "given", "d": "dv"}


async def test_jittered_retry_delay_is_exact_with_a_seed() -> None:
    policy = {"max_retries": 2, "strategy": "EXPONENTIAL_FULL_JITTER", "backoff_factor": 1000}
    expected_rng = random.Random(7)  # §5: int(U(0, b * e**(n-1))), one draw per retry
    expected = [int(expected_rng.uniform(0, 1000)), int(expected_rng.uniform(0, 2000))]
    async with running(seed=7) as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")], retry_policy=policy)
        run_id = await trigger(client)
        delays = []
        for retry_count in (1, 2):
            (state,) = await claim(client, "A")
            before_ms = int(sm.clock.now() * 1000)
            await ok(
                client.post(f"{PREFIX}/state/{state['state_id']}/errored", json={"error": "x"})
            )
            (retry,) = [s for s in sm.states(run_id) if s["retry_count"] == retry_count]
            delays.append(retry["enqueue_after"] - before_ms)
            await sm.clock.sleep(delays[-1] / 1000)
    assert delays == expected


async def test_executed_ignores_the_path_namespace() -> None:
    # §2.8: the namespace in the path is not checked against the state.
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_id = await trigger(client)
        (state,) = await claim(client, "A")
        await ok(
            client.post(
                f"/v0/namespace/elsewhere/state/{state['state_id']}/executed",
                json={"outputs": [{}]},
            )
        )
        assert (await sm.wait_for_run(run_id))["status"] == "SUCCESS"

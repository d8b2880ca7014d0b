"""Re-upserting a graph and listing one namespace's graphs, from 1k to 30k stored graphs (#12).

Before the indexes, re-upserting a graph scanned every PENDING cron doc of every namespace (so a
deploy re-upserting K graphs with cron triggers cost O(K²)), and listing one namespace's graphs
scanned every stored graph. The cron schedule now keeps the PENDING docs of each (namespace,
graph), and the store the templates of each namespace: both costs must stay flat as the number
of graphs grows.

One in-process fake per size (``httpx.ASGITransport``, ManualClock, request log off), all alive
in this process at once: graphs of one node with one cron trigger each (so N PENDING cron docs),
10 graphs per namespace. At each size:

- ``reupsert``: ``PUT /v0/namespace/{ns}/graph/{name}`` (§2.3) of the same body again, for
  graphs spread over the whole set (each drops the graph's PENDING doc, schedules a new one, and
  verifies the graph);
- ``list``: ``GET /v0/namespace/{ns}/graphs/`` (§2.5) of namespaces spread over the whole set
  (10 templates each).

Figures are **CPU time** (``time.process_time``, client and fake in this one process) per
request, the best of eight batches of 200, the sizes' batches alternating (see ``_measure``).
With benchmarks disabled (the normal test run) it runs at 50 and 200 graphs, as a check.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from benchmarks._harness import record, run
from benchmarks._workload import check, node_registration
from exo_ref import ManualClock
from fake_state_manager import FakeStateManager

NODE = "Tick"
PER_NAMESPACE = 10
OPS = 200  # operations per batch
BATCHES = 8  # rounds: every size once per round, in rotated order
TRIGGERS = [{"type": "CRON", "value": {"expression": "0 * * * *"}}]
JSON = {"content-type": "application/json"}


def _namespace(i: int) -> str:
    return f"ns{i // PER_NAMESPACE}"


def _body(namespace: str) -> bytes:
    node = {
        "node_name": NODE,
        "namespace": namespace,
        "identifier": "tick",
        "inputs": {"x": "go"},
        "next_nodes": None,
        "unites": None,
    }
    return json.dumps({"secrets": {}, "nodes": [node], "triggers": TRIGGERS}).encode()


class Graphs:
    """A fake holding ``count`` graphs (grown with :meth:`grow`), and a client for it."""

    def __init__(self, sm: FakeStateManager, client: httpx.AsyncClient) -> None:
        self.sm = sm
        self.client = client
        self.count = 0
        self._bodies: dict[str, bytes] = {}  # encoded once: the figure is the fake's cost

    async def upsert(self, i: int) -> None:
        namespace = _namespace(i)
        body = self._bodies.get(namespace)
        if body is None:
            registration = {"runtime_name": "bench", "nodes": [node_registration(NODE, ["x"], [])]}
            await check(
                await self.client.put(f"/v0/namespace/{namespace}/nodes/", json=registration),
                "register",
            )
            body = self._bodies[namespace] = _body(namespace)
        response = await self.client.put(
            f"/v0/namespace/{namespace}/graph/g{i}", content=body, headers=JSON
        )
        assert response.status_code == 201, response.text[:500]

    async def list_one(self, namespace: str) -> None:
        response = await self.client.get(f"/v0/namespace/{namespace}/graphs/")
        assert response.status_code == 200
        assert response.json()["count"] == PER_NAMESPACE

    async def grow(self, count: int) -> None:
        for i in range(self.count, count):
            await self.upsert(i)
        self.count = count

    def spread(self, ops: int) -> list[int]:
        step = max(1, self.count // ops)
        return [(k * step) % self.count for k in range(ops)]


async def _cpu_us(batch: list[Any], op: Callable[[Any], Awaitable[None]]) -> float:
    """The CPU time of one ``op(item)`` over ``batch``, in µs."""
    gc.collect()
    start = time.process_time()
    for item in batch:
        await op(item)
    return (time.process_time() - start) * 1e6 / len(batch)


async def _measure(sizes: list[int]) -> dict[int, dict[str, float]]:
    """One fake per size, all alive at once; batches alternate between them, rotated each round.

    Every size is measured under the same machine load and the same process heap (the garbage
    collector's passes and the caches see all the fakes together), so what is left to differ is
    what each call does with its own store: the figure the indexes must keep flat. Each figure is
    the best of :data:`BATCHES` batches (on a shared machine, other processes only ever make a
    batch slower).
    """
    async with contextlib.AsyncExitStack() as stack:
        stores: dict[int, Graphs] = {}
        for size in sizes:
            sm = FakeStateManager(clock=ManualClock(), record_requests=False)
            await stack.enter_async_context(sm)
            client = await stack.enter_async_context(sm.client())
            graphs = stores[size] = Graphs(sm, client)
            await graphs.grow(size)
            assert len(sm.engine.store.graphs) == size
            assert sum(1 for _ in sm.engine.cron.pending()) == size  # one PENDING doc per graph
        spreads = {size: graphs.spread(OPS) for size, graphs in stores.items()}
        namespaces = {size: sorted({_namespace(i) for i in spread})
                      for size, spread in spreads.items()}
        samples: dict[int, dict[str, list[float]]] = {
            size: {"reupsert": [], "list": []} for size in sizes
        }
        for round_ in range(BATCHES):
            for size in sizes[round_ % len(sizes):] + sizes[: round_ % len(sizes)]:
                graphs = stores[size]
                samples[size]["reupsert"].append(await _cpu_us(spreads[size], graphs.upsert))
                samples[size]["list"].append(await _cpu_us(namespaces[size], graphs.list_one))
        results: dict[int, dict[str, float]] = {}
        for size, graphs in stores.items():
            engine = graphs.sm.engine
            engine.check_invariants()
            assert sum(1 for _ in engine.cron.pending()) == size  # replaced, not added
            results[size] = {
                "reupsert_us": min(samples[size]["reupsert"]),
                "list_us": min(samples[size]["list"]),
                "namespaces": len(engine.store.graphs_by_namespace),
                "pending_cron_docs": size,
            }
    return results


def test_reupsert_and_list_stay_flat_as_graphs_grow(benchmark: Any, full: bool) -> None:
    sizes = [1_000, 3_000, 10_000, 30_000] if full else [50, 200]
    got = benchmark.pedantic(run, args=("asyncio", _measure, sizes), rounds=1)
    for size, figures in got.items():
        info = {"graphs": size, "namespaces": figures["namespaces"],
                "pending_cron_docs": figures["pending_cron_docs"], "batches": BATCHES,
                "per_batch": OPS}
        record(benchmark, f"fake/graph_index/reupsert/{size}", figures["reupsert_us"],
               "us CPU", **info)
        record(benchmark, f"fake/graph_index/list/{size}", figures["list_us"], "us CPU", **info)

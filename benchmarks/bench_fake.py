"""The fake state manager's own costs.

All in-process (``httpx.ASGITransport``), real clock:
- one enqueue + executed cycle;
- enqueue latency with 1k versus 100k stored states: the measured namespace holds claimable
  ``Work`` states; the rest is finished states, another node's claimable states in the same
  namespace, and the same node name in another namespace. Target ratio 100k/1k <= 1.5;
- executed with a fan-out of 1,000 (the request, and until the children exist);
- memory per stored state at 100k states (tracemalloc, request log off). Target <= 4 KiB.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from typing import Any

import pytest

from benchmarks._harness import Target, open_target, record, run
from benchmarks._workload import (
    DRAIN_GRAPH,
    FAN_NODE,
    WORK_NODE,
    enqueue,
    executed,
    percentile,
    prepare_fanout,
    run_counts,
    setup_drain_graph,
    trigger,
    wait_counts,
)

NS = "bench"
OTHER_NS = "other"
SIDE = {"fan": "SideFan", "work": "Side", "graph": "side"}


async def _fill(target: Target, total: int) -> list[tuple[str, str]]:
    """Store ``total`` states in six equal parts (see the module docstring); return the runs."""
    part = total // 6
    client = target.client
    await setup_drain_graph(client, NS)
    await setup_drain_graph(client, OTHER_NS)
    await setup_drain_graph(client, NS, **SIDE)
    return [
        (NS, await prepare_fanout(client, NS, part)),  # finished FanOut + claimable Work
        (OTHER_NS, await prepare_fanout(client, OTHER_NS, part)),  # same, another namespace
        (NS, await prepare_fanout(client, NS, part, fan=SIDE["fan"], graph=SIDE["graph"])),
    ]


def _summary(samples_s: list[float]) -> dict[str, float]:
    micros = [s * 1e6 for s in samples_s]
    return {
        "median_us": statistics.median(micros),
        "p99_us": percentile(micros, 99),
        "mean_us": statistics.fmean(micros),
        "samples": len(micros),
    }


async def _cycles(count: int) -> dict[str, float]:
    async with open_target("inproc", record_requests=False) as target:
        await setup_drain_graph(target.client, NS)
        run_id = await prepare_fanout(target.client, NS, count)
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            (state,) = await enqueue(target.client, NS, [WORK_NODE], 1)
            await executed(target.client, NS, state["state_id"], [{"o": "done"}])
            samples.append(time.perf_counter() - start)
        counts = await run_counts(target.client, NS, run_id)
        assert counts["success_count"] == 2 * count
        return _summary(samples)


def test_fake_enqueue_executed_cycle(benchmark: Any, anyio_backend: str, full: bool) -> None:
    count = 2_000 if full else 20
    stats = benchmark.pedantic(run, args=(anyio_backend, _cycles, count), rounds=1)
    record(benchmark, f"fake/cycle/{anyio_backend}", stats["median_us"], "us", **stats)


async def _enqueue_with_history(total: int, probes: int) -> dict[str, Any]:
    async with open_target("inproc", record_requests=False) as target:
        await _fill(target, total)
        assert target.sm is not None  # in-process: the engine is in this process
        # Alternate the two probes so that both see the same store, heap and GC state.
        http, engine = [], []
        for _ in range(probes):
            start = time.perf_counter()
            states = await enqueue(target.client, NS, [WORK_NODE], 1)
            http.append(time.perf_counter() - start)
            assert len(states) == 1
            start = time.perf_counter()
            with target.sm.engine.lock:
                got = target.sm.engine.enqueue(NS, nodes=[WORK_NODE], batch_size=1)
            engine.append(time.perf_counter() - start)
            assert got["count"] == 1
        return {"http": _summary(http), "engine": _summary(engine)}


def test_fake_enqueue_latency_with_stored_states(benchmark: Any, stored_states: int) -> None:
    probes = 80 if stored_states >= 1_000 else 20  # 2 claims each; 1k stores 166 claimable
    got = benchmark.pedantic(
        run, args=("asyncio", _enqueue_with_history, stored_states, probes), rounds=1
    )
    record(benchmark, f"fake/enqueue/http/{stored_states}", got["http"]["median_us"], "us",
           stored=stored_states, **got["http"])
    record(benchmark, f"fake/enqueue/engine/{stored_states}", got["engine"]["median_us"], "us",
           stored=stored_states, **got["engine"])


async def _memory(total: int) -> dict[str, float]:
    tracemalloc.start()
    try:
        async with open_target("inproc", record_requests=False) as target:
            await setup_drain_graph(target.client, "warmup")
            await prepare_fanout(target.client, "warmup", 3)  # first-use allocations
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            runs = await _fill(target, total)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            stored = 0
            for ns, run_id in runs:
                stored += (await run_counts(target.client, ns, run_id))["total_count"]
    finally:
        tracemalloc.stop()
    return {"bytes_per_state": (after - before) / stored, "stored": stored,
            "bytes_total": after - before}


def test_fake_memory_per_stored_state(benchmark: Any, full: bool) -> None:
    total = 100_000 if full else 600
    got = benchmark.pedantic(run, args=("asyncio", _memory, total), rounds=1)
    assert got["stored"] == total // 6 * 6
    record(benchmark, "fake/memory_per_state", got["bytes_per_state"], "bytes", **got)


async def _executed_fanout(fanout: int, rounds: int) -> dict[str, Any]:
    async with open_target("inproc", record_requests=False) as target:
        await setup_drain_graph(target.client, NS)
        request, complete = [], []
        for _ in range(rounds):
            run_id = await trigger(target.client, NS, DRAIN_GRAPH)
            (root,) = await enqueue(target.client, NS, [FAN_NODE], 1)
            outputs = [{"i": str(k)} for k in range(fanout)]
            start = time.perf_counter()
            await executed(target.client, NS, root["state_id"], outputs)
            request.append(time.perf_counter() - start)
            await wait_counts(target.client, NS, run_id, success=fanout, total=2 * fanout,
                              limit=120, interval=0.001)
            complete.append(time.perf_counter() - start)
        return {"request": _summary(request), "complete": _summary(complete)}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_fake_executed_with_fanout(benchmark: Any, anyio_backend: str, full: bool) -> None:
    fanout, rounds = (1_000, 5) if full else (50, 1)
    got = benchmark.pedantic(run, args=(anyio_backend, _executed_fanout, fanout, rounds), rounds=1)
    record(benchmark, "fake/executed_fanout/request", got["request"]["median_us"], "us",
           fanout=fanout, **got["request"])
    record(benchmark, "fake/executed_fanout/complete", got["complete"]["median_us"], "us",
           fanout=fanout, **got["complete"])

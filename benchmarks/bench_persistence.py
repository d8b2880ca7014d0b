"""What ``--db`` (SQLite persistence) costs per state, against the in-memory store.

The figure is **CPU time** (``time.process_time``: user + system time of this process, every
thread), not wall-clock time: the two stores run the same engine, so the difference is the work
persistence adds (encoding the changed documents as JSON, SQLite's statements and the write of
its log on each commit), independent of what else the machine runs. Disk flushes by the kernel
after a commit are not the process's CPU time and are not in it (``synchronous=NORMAL``: a commit
writes the log to the page cache, it does not wait for the disk; see
``fake_state_manager/_store/sqlite.py``).

Three figures per store, on one in-process fake (``httpx.ASGITransport``, real clock, request
log off), in the same process and the same run:

- ``fanout``: one ``executed`` with N outputs, which creates N ``Work`` states (one transaction
  of N + N rows with ``--db``), per state created;
- ``http``: one ``enqueue`` (batch 1) + one ``executed`` request per state (two transactions);
- ``engine``: the same two calls on the engine directly (no HTTP, no client), per state.

Each figure is the median of three rounds, the two stores alternating, to damp the noise of a
shared machine.
"""

from __future__ import annotations

import gc
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks._harness import record, run
from benchmarks._workload import (
    WORK_NODE,
    enqueue,
    executed,
    prepare_fanout,
    run_counts,
    setup_drain_graph,
)
from fake_state_manager import FakeStateManager

NS = "persist"


def _cpu() -> float:
    gc.collect()
    return time.process_time()


async def _costs(db: Path | None, count: int) -> dict[str, float]:
    sm = FakeStateManager(record_requests=False, db=db)
    try:
        async with sm, sm.client() as client:
            await setup_drain_graph(client, NS)
            await prepare_fanout(client, NS, 3)  # first-use costs out of the way
            for _ in range(3):
                (state,) = await enqueue(client, NS, [WORK_NODE], 1)
                await executed(client, NS, state["state_id"], [{"o": "done"}])
            start = _cpu()
            run_id = await prepare_fanout(client, NS, 2 * count)
            fanout = time.process_time() - start
            start = _cpu()
            for _ in range(count):
                (state,) = await enqueue(client, NS, [WORK_NODE], 1)
                await executed(client, NS, state["state_id"], [{"o": "done"}])
            http = time.process_time() - start
            engine = sm.engine
            start = _cpu()
            for _ in range(count):
                got = engine.enqueue(NS, nodes=[WORK_NODE], batch_size=1)
                engine.executed(NS, got["states"][0]["state_id"], outputs=[{"o": "done"}])
            direct = time.process_time() - start
            counts = await run_counts(client, NS, run_id)
            assert counts["success_count"] == 4 * count, counts  # every state done, once
    finally:
        sm.close()
    micros = 1e6
    return {
        "fanout_us": fanout * micros / (2 * count),
        "http_us": http * micros / count,
        "engine_us": direct * micros / count,
    }


ROUNDS = 3


async def _both(folder: Path, count: int) -> dict[str, dict[str, float]]:
    """Both stores, alternating, ``ROUNDS`` times each (a fresh file each time); the medians."""
    samples: dict[str, list[dict[str, float]]] = {"memory": [], "sqlite": []}
    for n in range(ROUNDS):
        samples["memory"].append(await _costs(None, count))
        samples["sqlite"].append(await _costs(folder / f"bench-{n}.db", count))
    return {
        store: {kind: statistics.median(s[kind] for s in runs) for kind in runs[0]}
        for store, runs in samples.items()
    }


def test_cpu_per_state_with_db_against_memory(benchmark: Any, tmp_path: Path, full: bool) -> None:
    count = 5_000 if full else 30
    got = benchmark.pedantic(run, args=("asyncio", _both, tmp_path, count), rounds=1)
    for store, figures in got.items():
        for kind, value in figures.items():
            layer = kind.removesuffix("_us")
            record(benchmark, f"persist/{layer}/{store}", value, "us CPU", states=count,
                   store=store, rounds=ROUNDS)

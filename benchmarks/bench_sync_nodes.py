"""Synchronous nodes: exo_ref runs a plain ``def execute``
in a worker thread.

- Throughput with ``workers`` 1, 2, 4 for a node that releases the GIL (sha256 over 16 MiB),
  which should scale until the cores run out, and a pure-Python CPU-bound one, which cannot scale
  in threads.
- Stall check: one state spins in pure Python (holding the GIL but for the interpreter's switch
  interval) while the other worker runs a few quick states; the quick states done during the
  spin, and the spacing of the (empty) polls once they are done, show whether the event loop
  kept going.

In-process (ASGI transport), asyncio, real clock.
"""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import pytest

from benchmarks._harness import Settings, open_target, record, run, run_runtime_until
from benchmarks._nodes import HASH_BUFFER, StallProbe, stall_node, work_node
from benchmarks._workload import (
    drain_window,
    now,
    prepare_fanout,
    setup_drain_graph,
    wait_counts,
)
from exo_ref import BaseNode, Runtime

NS = "sync"
POLL = 0.05


async def _drain(node: type[BaseNode], settings: Settings, n: int, target_mode: str = "inproc"
                 ) -> tuple[float, list[Any]]:
    async with open_target(target_mode) as target:
        await setup_drain_graph(target.client, NS)
        run_id = await prepare_fanout(target.client, NS, n)
        since = now()
        runtime = Runtime(
            NS, "bench-sync", [node], state_manager_uri=target.uri, key=target.key,
            batch_size=settings.batch_size, workers=settings.workers,
            poll_interval=settings.poll_interval, transport=target.transport,
        )

        async def done() -> Any:
            return await wait_counts(target.client, NS, run_id, success=2 * n, total=2 * n,
                                     limit=600, interval=0.02)

        await run_runtime_until(runtime, done, limit=600)
        window = drain_window(await target.requests(), NS, since)
        assert window.reports == n
        return n / window.seconds, await target.requests()


@pytest.mark.parametrize("kind", ["sha256", "python"])
def test_sync_node_throughput(benchmark: Any, kind: str, sync_workers: int, full: bool) -> None:
    n = (48 if kind == "sha256" else 32) if full else 4
    settings = Settings(f"workers={sync_workers}", batch_size=16, workers=sync_workers,
                        poll_interval=POLL)
    rate, _ = benchmark.pedantic(
        run, args=("asyncio", _drain, work_node(kind), settings, n), rounds=1
    )
    extra = {"mib_per_s": rate * len(HASH_BUFFER) / 2**20} if kind == "sha256" else {}
    record(benchmark, f"sync/{kind}/workers={sync_workers}", rate, "states/s", n=n, **extra)


def test_sync_cpu_bound_node_does_not_stall_polling(benchmark: Any, full: bool) -> None:
    long_seconds, quick = (2.0, 20) if full else (0.3, 4)
    probe = StallProbe()
    settings = Settings("stall", batch_size=16, workers=2, poll_interval=POLL)
    _, requests = benchmark.pedantic(
        run, args=("asyncio", _drain, stall_node(probe, long_seconds), settings, quick + 1),
        rounds=1,
    )
    assert probe.long_start is not None
    assert probe.long_end is not None
    quick_during = [t for t in probe.quick_reports if probe.long_start <= t <= probe.long_end]
    # Once the quick states are done, the poller has room and nothing to claim: it should poll
    # every poll_interval. The spacing of those polls during the spin is the stall measure.
    idle_from = max([probe.long_start, *probe.quick_reports])
    poll_path = f"/v0/namespace/{NS}/states/enqueue"
    polls = [r.time for r in requests
             if r.path == poll_path and idle_from <= r.time <= probe.long_end]
    gaps = [b - a for a, b in itertools.pairwise(polls)]
    info = {
        "spin_s": probe.long_end - probe.long_start,
        "idle_polls_during_spin": len(polls),
        "idle_window_s": probe.long_end - idle_from,
        "quick_states_done_during_spin": len(quick_during),
        "quick_states": quick,
    }
    if gaps:
        info |= {"gap_p50_ms": 1000 * statistics.median(gaps)}
    record(benchmark, "sync/stall/max_poll_gap", 1000 * max(gaps) if gaps else None, "ms",
           poll_interval_ms=1000 * POLL, **info)

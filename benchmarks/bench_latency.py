"""Trigger-to-execution-start latency, real clock, in-process.

A one-node graph whose ``Probe`` node records when it starts. Each sample waits a random fraction
of ``poll_interval`` (seeded, so samples do not lock onto the poll phase), triggers a run and
waits for its state to start. Expected: about half a ``poll_interval`` at the median, since an
idle runtime polls once per interval (contract §8.5 upstream; exo_ref likewise).
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import anyio

from benchmarks._harness import (
    open_target,
    record,
    run,
    run_runtime_until,
    wait_for_first_poll,
)
from benchmarks._nodes import LatencyProbe, probe_node
from benchmarks._workload import ONE_NODE_GRAPH, percentile, setup_one_node_graph, trigger
from exo_ref import Runtime

NS = "latency"
SAMPLES = {1.0: 20, 0.1: 100}
SAMPLES_CHECK = 3


async def _latency(poll: float, samples: int) -> list[float]:
    async with open_target("inproc") as target:
        await setup_one_node_graph(target.client, NS, "Probe", "k")
        probe = LatencyProbe()
        runtime = Runtime(
            NS, "bench-latency", [probe_node(probe)], state_manager_uri=target.uri,
            key=target.key, poll_interval=poll, transport=target.transport,
        )

        async def measure() -> list[float]:
            await wait_for_first_poll(target, NS)
            rng = random.Random(20261129)
            latencies = []
            for sample in range(samples):
                await anyio.sleep(rng.uniform(0, poll))
                started = probe.expect(str(sample))
                triggered = time.time()
                await trigger(target.client, NS, ONE_NODE_GRAPH, {"k": str(sample)})
                await started.wait()
                latencies.append(probe.started[str(sample)] - triggered)
            return latencies

        latencies: list[float] = await run_runtime_until(
            runtime, measure, limit=60 + samples * 3 * poll
        )
        return latencies


def test_trigger_to_start_latency(
    benchmark: Any, latency_case: tuple[str, float], full: bool
) -> None:
    anyio_backend, latency_poll = latency_case
    samples = SAMPLES[latency_poll] if full else SAMPLES_CHECK
    latencies = benchmark.pedantic(
        run, args=(anyio_backend, _latency, latency_poll, samples), rounds=1
    )
    assert len(latencies) == samples
    assert all(lat >= 0 for lat in latencies)
    ms = [lat * 1000 for lat in latencies]
    for q in (50, 99):
        record(
            benchmark, f"latency/{anyio_backend}/poll={latency_poll}/p{q}", percentile(ms, q),
            "ms", samples=samples, mean_ms=statistics.fmean(ms), max_ms=max(ms),
        )

"""Idle cost: CPU used by an idle runtime.

The runtime polls an empty state manager at ``poll_interval=1`` for 10 s. The state manager is
served over loopback from a uvicorn thread, so the runtime's event-loop thread (this test's main
thread) can be measured alone with ``time.thread_time()``; the whole process (runtime plus the
server answering its polls) is reported as well. Target: under 1% of one core.
"""

from __future__ import annotations

import resource
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
from benchmarks._nodes import work_node
from benchmarks._workload import setup_drain_graph
from exo_ref import Runtime

NS = "idle"


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _idle(seconds: float) -> dict[str, float]:
    async with open_target("loopback") as target:
        await setup_drain_graph(target.client, NS)
        runtime = Runtime(
            NS, "bench-idle", [work_node("async")], state_manager_uri=target.uri,
            key=target.key, poll_interval=1,
        )
        poll_path = f"/v0/namespace/{NS}/states/enqueue"

        async def measure() -> dict[str, float]:
            await wait_for_first_poll(target, NS)
            first = len(await target.requests())
            wall, thread, process = time.perf_counter(), time.thread_time(), _process_cpu()
            await anyio.sleep(seconds)
            wall = time.perf_counter() - wall
            thread = time.thread_time() - thread
            process = _process_cpu() - process
            polls = sum(r.path == poll_path for r in (await target.requests())[first:])
            return {"seconds": wall, "thread_cpu_s": thread, "process_cpu_s": process,
                    "polls": polls}

        got: dict[str, float] = await run_runtime_until(runtime, measure, limit=seconds + 60)
        return got


def test_idle_cpu(benchmark: Any, anyio_backend: str, full: bool) -> None:
    seconds = 10.0 if full else 0.5
    got = benchmark.pedantic(run, args=(anyio_backend, _idle, seconds), rounds=1)
    assert got["polls"] <= seconds + 2  # about one poll per second: idle, not spinning
    record(benchmark, f"idle/{anyio_backend}/runtime_thread",
           100 * got["thread_cpu_s"] / got["seconds"], "% of a core", **got)
    record(benchmark, f"idle/{anyio_backend}/process",
           100 * got["process_cpu_s"] / got["seconds"], "% of a core", **got)

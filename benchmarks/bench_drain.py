"""Drain throughput.

Workload (``_workload``): a ``fan -> work`` run fanned out into N CREATED ``Work`` states before
the contender starts; the contender claims and executes all of them. The figure is N divided by
the time from the contender's first ``states/enqueue`` to its last ``executed`` report, both
taken from the fake's request log, so every contender is timed the same way, by the server.

Contenders, all at the same settings (``_harness.DEFAULTS`` = upstream's 16/4/1 s, and ``TUNED``):
- exo_ref, in-process (ASGI transport) and over loopback (uvicorn in a thread), asyncio and trio;
- the floor (``_floor``): bare httpx, same requests and concurrency, no runtime machinery;
- upstream ``exospherehost`` 0.0.3 in a Python 3.12 subprocess, over loopback.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any

import anyio

from benchmarks._floor import drain_floor
from benchmarks._harness import (
    SETTINGS,
    Settings,
    open_target,
    record,
    run,
    run_runtime_until,
)
from benchmarks._nodes import work_node
from benchmarks._upstream import find_upstream_python, start_upstream_runtime
from benchmarks._workload import (
    WORK_NODE,
    Window,
    drain_window,
    now,
    prepare_fanout,
    run_counts,
    setup_drain_graph,
    wait_counts,
)
from exo_ref import Runtime

NS = "drain"
# Upstream drains ~batch_size/(poll_interval + RTT) states/s (contract §8.9 item 6): ~16/s at the
# defaults, so the full 1,000 takes about a minute. Its rate is flat once started, so a smaller N
# (EXO_BENCH_UPSTREAM_N_DEFAULTS) gives the same states/s for a quicker run; the report states N.
UPSTREAM_N = {"defaults": int(os.environ.get("EXO_BENCH_UPSTREAM_N_DEFAULTS", "1000")),
              "tuned": 1_000}
UPSTREAM_N_CHECK = 20


def guard(n: int) -> float:
    """A deadlock guard for a drain of ``n`` states (assumes at least 5 states/s)."""
    return 60 + n / 5


@dataclass(frozen=True)
class Drain:
    n: int
    window: Window
    total_states: int

    @property
    def rate(self) -> float:
        return self.n / self.window.seconds


async def _drain_exo_ref(mode: str, settings: Settings, n: int) -> Drain:
    async with open_target(mode) as target:
        await setup_drain_graph(target.client, NS)
        run_id = await prepare_fanout(target.client, NS, n)
        since = now()
        runtime = Runtime(
            NS,
            "bench-exo-ref",
            [work_node("async")],
            state_manager_uri=target.uri,
            key=target.key,
            batch_size=settings.batch_size,
            workers=settings.workers,
            poll_interval=settings.poll_interval,
            transport=target.transport,
        )

        async def done() -> dict[str, Any]:
            return await wait_counts(
                # Every 0.1 s, as for upstream (_wait_or_exit): the check shares the server.
                target.client, NS, run_id, success=2 * n, total=2 * n, limit=guard(n),
                interval=0.1,
            )

        counts = await run_runtime_until(runtime, done, limit=guard(n))
        return Drain(n, drain_window(await target.requests(), NS, since), counts["total_count"])


async def _drain_floor(mode: str, settings: Settings, n: int) -> Drain:
    async with open_target(mode) as target:
        await setup_drain_graph(target.client, NS)
        run_id = await prepare_fanout(target.client, NS, n)
        since = now()
        reported = await drain_floor(
            target.client, NS, WORK_NODE, batch_size=settings.batch_size,
            workers=settings.workers, direct=target.direct,
        )
        assert reported == n
        counts = await wait_counts(
            target.client, NS, run_id, success=2 * n, total=2 * n, limit=guard(n)
        )
        return Drain(n, drain_window(await target.requests(), NS, since), counts["total_count"])


async def _drain_upstream(python: str, settings: Settings, n: int) -> Drain:
    async with open_target("loopback") as target:
        await setup_drain_graph(target.client, NS)
        run_id = await prepare_fanout(target.client, NS, n)
        since = now()
        with tempfile.TemporaryFile() as log:
            process = start_upstream_runtime(
                python, target.uri, target.key, NS, batch_size=settings.batch_size,
                workers=settings.workers, poll=settings.poll_interval, log=log,
            )
            try:
                counts = await _wait_or_exit(process, target, run_id, n)
            except BaseException:
                log.seek(0)
                print("upstream runtime stderr:\n" + log.read().decode(errors="replace")[-4000:])
                raise
            finally:
                process.terminate()
                process.wait(timeout=30)
        return Drain(n, drain_window(await target.requests(), NS, since), counts["total_count"])


async def _wait_or_exit(process: Any, target: Any, run_id: str, n: int) -> dict[str, Any]:
    with anyio.fail_after(guard(n)):
        while True:
            if process.poll() is not None:
                raise AssertionError(f"upstream runtime exited early ({process.returncode})")
            counts = await run_counts(target.client, NS, run_id)
            if counts["success_count"] >= 2 * n:
                return counts
            await anyio.sleep(0.1)


def _check(drain: Drain) -> None:
    # Correctness, never time: every Work state was claimed once and reported once.
    assert drain.total_states == 2 * drain.n
    assert drain.window.reports == drain.n


def _record(benchmark: Any, contender: str, mode: str, backend: str, settings: Settings,
            drain: Drain) -> None:
    record(
        benchmark,
        f"drain/{contender}/{mode}/{backend}/{settings.name}/{drain.n}",
        drain.rate,
        "states/s",
        n=drain.n,
        seconds=drain.window.seconds,
        polls=drain.window.polls,
        batch_size=settings.batch_size,
        workers=settings.workers,
        poll_interval=settings.poll_interval,
    )


def test_drain_exo_ref_and_floor(
    benchmark: Any, drain_settings: str, drain_case: tuple[str, int]
) -> None:
    """exo_ref and the floor, on asyncio and trio, back to back for one case.

    Running the four drains of a case together makes the exo_ref/floor and trio/asyncio ratios
    paired measurements: load from other work on the machine changes over minutes, and would
    otherwise bias whichever contender ran later.
    """
    mode, n = drain_case
    settings = SETTINGS[drain_settings]
    order = [("exo_ref", "asyncio"), ("floor", "asyncio"), ("floor", "trio"), ("exo_ref", "trio")]

    def drain_all() -> list[tuple[str, str, Drain]]:
        return [
            (contender, backend,
             run(backend, _drain_exo_ref if contender == "exo_ref" else _drain_floor,
                 mode, settings, n))
            for contender, backend in order
        ]

    for contender, backend, drain in benchmark.pedantic(drain_all, rounds=1):
        _check(drain)
        _record(benchmark, contender, mode, backend, settings, drain)


def test_drain_upstream(benchmark: Any, upstream_settings: str, full: bool) -> None:
    # Collected only where the upstream SDK can run (conftest deselects it otherwise).
    python, how = find_upstream_python()
    assert python is not None, how
    settings = SETTINGS[upstream_settings]
    n = UPSTREAM_N[upstream_settings] if full else UPSTREAM_N_CHECK
    drain = benchmark.pedantic(
        run, args=("asyncio", _drain_upstream, python, settings, n), rounds=1
    )
    _check(drain)
    _record(benchmark, "upstream", "loopback", "asyncio", settings, drain)

"""Drain throughput.

Workload (``_workload``): a ``fan -> work`` run fanned out into N CREATED ``Work`` states before
the contender starts; the contender claims and executes all of them. The figure is N divided by
the time from the contender's first ``states/enqueue`` to its last ``executed`` report, both
taken from the fake's request log, so every contender is timed the same way, by the server.

Contenders, all at the same settings (``_harness.DEFAULTS`` = upstream's 16/4/1 s, and ``TUNED``):
- exo_ref, in-process (ASGI transport) and over loopback (uvicorn in a thread), asyncio and trio;
- the floor (``_floor``): the runtime's own HTTP path (same requests and concurrency), no runtime
  machinery;
- upstream ``exospherehost`` 0.0.3 in a Python 3.12 subprocess, over loopback.

Every figure also carries the CPU time per state, over the same window, of the runtime's process
(``runtime_cpu_us``: the benchmark's main thread for exo_ref and the floor, which in-process also
runs the fake; upstream's whole process) and, over loopback, of the server's process
(``server_cpu_us``), plus the load average when the drain ended (``_cpu``). On a shared machine
states/s moves with other work; CPU per state barely does, so the runtime targets use it.
"""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import httpx

from benchmarks._cpu import CpuSampler, load_average, process_clock, thread_clock
from benchmarks._floor import drain_floor, floor_post
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
# exo_ref in process with every request through httpx.AsyncClient (_ViaClient).
VIA_CLIENT = "exo_ref_via_client"


def guard(n: int) -> float:
    """A deadlock guard for a drain of ``n`` states (assumes at least 5 states/s)."""
    return 60 + n / 5


@dataclass(frozen=True)
class Drain:
    n: int
    window: Window
    total_states: int
    runtime_cpu: float | None = None  # CPU seconds over the window; None where unreadable
    server_cpu: float | None = None
    load: list[float] | None = None

    @property
    def rate(self) -> float:
        return self.n / self.window.seconds

    def per_state_us(self, seconds: float | None) -> float | None:
        return None if seconds is None else seconds / self.n * 1e6


def _settle() -> None:
    """Collect garbage before a drain: preparing it made N states in this process (in process,
    the fake's), and a full collection that lands in one contender's short window but not the
    next one's would be charged to that contender."""
    gc.collect()


def _sampler(target: Any, runtime: Any) -> CpuSampler:
    """CPU clocks for a drain: the runtime's (a clock function) and, over loopback, the server's."""
    server = process_clock(target.server_pid) if target.server_pid is not None else None
    return CpuSampler({"runtime": runtime, "server": server}, interval=0.002)


def _measured(n: int, window: Window, total: int, cpu: CpuSampler) -> Drain:
    return Drain(
        n, window, total,
        runtime_cpu=cpu.between("runtime", window.start, window.end),
        server_cpu=cpu.between("server", window.start, window.end),
        load=load_average(),
    )


class _ViaClient(httpx.ASGITransport):
    """The fake's in-process transport, but not ``httpx.ASGITransport`` itself: the runtime then
    sends every request through ``httpx.AsyncClient``, as it did for every in-process request
    before issue 12 (and still does for any transport a user passes)."""


async def _drain_exo_ref(
    mode: str, settings: Settings, n: int, *, via_client: bool = False
) -> Drain:
    async with open_target(mode) as target:
        await setup_drain_graph(target.client, NS)
        run_id = await prepare_fanout(target.client, NS, n)
        _settle()
        since = now()
        transport = target.transport
        if via_client:
            assert target.sm is not None, "via_client is an in-process case"
            transport = _ViaClient(app=target.sm.app)
        runtime = Runtime(
            NS,
            "bench-exo-ref",
            [work_node("async")],
            state_manager_uri=target.uri,
            key=target.key,
            batch_size=settings.batch_size,
            workers=settings.workers,
            poll_interval=settings.poll_interval,
            transport=transport,
        )

        async def done() -> dict[str, Any]:
            return await wait_counts(
                # Every 0.1 s, as for upstream (_wait_or_exit): the check shares the server.
                target.client, NS, run_id, success=2 * n, total=2 * n, limit=guard(n),
                interval=0.1,
            )

        with _sampler(target, thread_clock()) as cpu:
            counts = await run_runtime_until(runtime, done, limit=guard(n))
        window = drain_window(await target.requests(), NS, since)
        return _measured(n, window, counts["total_count"], cpu)


async def _drain_floor(mode: str, settings: Settings, n: int) -> Drain:
    async with open_target(mode) as target:
        await setup_drain_graph(target.client, NS)
        run_id = await prepare_fanout(target.client, NS, n)
        _settle()
        since = now()
        with _sampler(target, thread_clock()) as cpu:
            reported = await drain_floor(
                floor_post(uri=target.uri, ns=NS, key=target.key, direct=target.direct,
                           transport=target.transport, client=target.client),
                WORK_NODE, batch_size=settings.batch_size, workers=settings.workers,
            )
        assert reported == n
        counts = await wait_counts(
            target.client, NS, run_id, success=2 * n, total=2 * n, limit=guard(n)
        )
        window = drain_window(await target.requests(), NS, since)
        return _measured(n, window, counts["total_count"], cpu)


async def _drain_upstream(python: str, settings: Settings, n: int) -> Drain:
    async with open_target("loopback") as target:
        await setup_drain_graph(target.client, NS)
        run_id = await prepare_fanout(target.client, NS, n)
        _settle()
        since = now()
        with tempfile.TemporaryFile() as log:
            process = start_upstream_runtime(
                python, target.uri, target.key, NS, batch_size=settings.batch_size,
                workers=settings.workers, poll=settings.poll_interval, log=log,
            )
            try:
                with _sampler(target, process_clock(process.pid)) as cpu:
                    counts = await _wait_or_exit(process, target, run_id, n)
            except BaseException:
                log.seek(0)
                print("upstream runtime stderr:\n" + log.read().decode(errors="replace")[-4000:])
                raise
            finally:
                process.terminate()
                process.wait(timeout=30)
        window = drain_window(await target.requests(), NS, since)
        return _measured(n, window, counts["total_count"], cpu)


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
            drain: Drain, rounds: list[Drain] | None = None) -> None:
    spread = {}
    if rounds is not None and len(rounds) > 1:
        spread = {"rounds": len(rounds),
                  "runtime_cpu_us_rounds": [drain_.per_state_us(drain_.runtime_cpu)
                                            for drain_ in rounds]}
    record(
        benchmark,
        f"drain/{contender}/{mode}/{backend}/{settings.name}/{drain.n}",
        drain.rate,
        "states/s",
        n=drain.n,
        seconds=drain.window.seconds,
        polls=drain.window.polls,
        runtime_cpu_us=drain.per_state_us(drain.runtime_cpu),
        server_cpu_us=drain.per_state_us(drain.server_cpu),
        loadavg=drain.load,
        batch_size=settings.batch_size,
        workers=settings.workers,
        poll_interval=settings.poll_interval,
        **spread,
    )


def _rounds(n: int, full: bool) -> int:
    """Alternating rounds per case: a drain of 1,000 lasts a tenth of a second, and single
    drains that short spread by 1.4x on a shared VM, enough to flip a 0.7 ratio either way; the
    median of five (three at 10,000, which last a second each) holds."""
    if not full:
        return 1
    return 5 if n <= 1_000 else 3


def _median(drains: list[Drain]) -> Drain:
    """The round of median runtime CPU per state (states/s where CPU is unreadable)."""
    def cost(drain: Drain) -> float:
        return drain.runtime_cpu if drain.runtime_cpu is not None else 1 / drain.rate

    return sorted(drains, key=cost)[len(drains) // 2]


def test_drain_exo_ref_and_floor(
    benchmark: Any, drain_settings: str, drain_case: tuple[str, int], full: bool
) -> None:
    """exo_ref and the floor, on asyncio and trio, in alternating rounds for one case.

    Running the drains of a case together makes the exo_ref/floor and trio/asyncio ratios
    paired measurements: load from other work on the machine changes over minutes, and would
    otherwise bias whichever contender ran later. Each round starts one contender further on,
    so none always runs first; each figure is the contender's median round (``_rounds``).
    """
    mode, n = drain_case
    settings = SETTINGS[drain_settings]
    order = [("exo_ref", "asyncio"), ("floor", "asyncio"), ("floor", "trio"), ("exo_ref", "trio")]
    if mode == "inproc":
        # The in-process target (issue 12): the direct path against AsyncClient, same run.
        order.insert(1, (VIA_CLIENT, "asyncio"))
    drains: dict[str, Callable[..., Awaitable[Drain]]] = {
        "exo_ref": _drain_exo_ref,
        "floor": _drain_floor,
        VIA_CLIENT: partial(_drain_exo_ref, via_client=True),
    }
    rounds = _rounds(n, full)

    def drain_all() -> dict[tuple[str, str], list[Drain]]:
        got: dict[tuple[str, str], list[Drain]] = {case: [] for case in order}
        for k in range(rounds):
            for contender, backend in order[k % len(order):] + order[: k % len(order)]:
                drain = run(backend, drains[contender], mode, settings, n)
                _check(drain)
                got[contender, backend].append(drain)
        return got

    for (contender, backend), got in benchmark.pedantic(drain_all, rounds=1).items():
        _record(benchmark, contender, mode, backend, settings, _median(got), rounds=got)


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

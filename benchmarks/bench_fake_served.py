"""The fake's CPU per state served (issue #12): the dev server over loopback, and in-process.

**Served**: the dev server (``python -m fake_state_manager``) in its own process, N fanned-out
``Work`` states drained over loopback by the floor's loop (``_floor.py``: 64 workers,
batch 64, sent straight on exo_ref's keep-alive HTTP/1.1 transport with a connection per worker,
so no connection is opened during the drain). The figure is the server process's CPU time
during the drain (its CPU clock: all threads, user + system) divided by N: one ``executed`` per
state plus its share of the ``enqueue`` polls. In the same run, alternating, from
``_dev_server.py`` on the dev server's uvicorn settings: the same fake with the fast path off
(the figure before it), a null ASGI app answering the same requests (what uvicorn and the
loopback syscalls cost alone), and a minimal Starlette JSON route (issue #12's 61 µs reference,
to tell a loaded machine from a slow fake). Target: at most 80 µs per state with the dev
server's default dependencies (httptools, orjson; uvloop only where installed).

**In-process**: the app called directly through ASGI (no HTTP client, no sockets), ``time.
process_time()`` per state for enqueue + executed, with and without the fast path, and the
engine's two calls alone. Target: the fast path cuts the fake's CPU per state in the proportion
the served target asks (80 / 147 = 0.54 of the normal app).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx

from benchmarks._cpu import load_average, process_clock
from benchmarks._dev_server import URI_PREFIX
from benchmarks._floor import Post, asgi_post, drain_floor, lean_post
from benchmarks._harness import record, run, server_process
from benchmarks._workload import WORK_NODE, prepare_fanout, run_counts, setup_drain_graph
from exo_ref import Http11Transport
from fake_state_manager import DEFAULT_API_KEY, FakeStateManager, create_app

NS = "bench"
BATCH = WORKERS = 64
SERVED = ("fast", "normal", "null", "starlette")
TARGET_US = 80.0
ISSUE_NORMAL_US = 147.0  # the fake's served CPU per state when issue #12 was filed


# -- served ---------------------------------------------------------------------------------


@contextmanager
def _dev_server(variant: str) -> Iterator[tuple[str, Callable[[], float]]]:
    if variant == "fast":  # the dev server itself, as `fake-state-manager` runs
        command = ["-m", "fake_state_manager", "--host", "127.0.0.1", "--port", "0",
                   "--api-key", DEFAULT_API_KEY]
    else:
        command = ["-m", "benchmarks._dev_server", variant, DEFAULT_API_KEY]
    with server_process(command, announce=URI_PREFIX) as (uri, pid):
        clock = process_clock(pid)
        if clock is None:
            raise RuntimeError("cannot read the server process's CPU clock (not Linux?)")
        yield uri, clock


def _transport() -> Http11Transport:
    # A connection per worker: none is opened (or closed) during the drain.
    return Http11Transport(max_connections=WORKERS + 2, max_keepalive_connections=WORKERS + 2)


def _post(uri: str, transport: Http11Transport) -> Post:
    """POSTs straight on the transport (no ``AsyncClient`` layer), as exo_ref's runtime sends."""
    return lean_post(transport, uri=uri, ns=NS, key=DEFAULT_API_KEY)


async def _drain_served(uri: str, clock: Callable[[], float], n: int) -> float:
    """Server CPU µs per state while ``n`` prepared states are drained."""
    http11 = _transport()
    headers = {"x-api-key": DEFAULT_API_KEY}
    async with httpx.AsyncClient(
        base_url=uri, headers=headers, timeout=120, transport=http11
    ) as client:
        await setup_drain_graph(client, NS)
        run_id = await prepare_fanout(client, NS, n)
        before = clock()
        done = await drain_floor(_post(uri, http11), WORK_NODE, batch_size=BATCH,
                                 workers=WORKERS)
        used = clock() - before
        assert done == n
        counts = await run_counts(client, NS, run_id)
        assert counts["success_count"] == 2 * n, counts
    return used / n * 1e6


async def _load_served(uri: str, clock: Callable[[], float], n: int) -> float:
    """Server CPU µs per state's worth of requests (``n`` executed, ``n / BATCH`` polls)."""
    http11 = _transport()
    post = _post(uri, http11)
    poll = json.dumps({"nodes": [WORK_NODE], "batch_size": BATCH}).encode()
    report = json.dumps({"outputs": [{"o": "done"}]}).encode()
    jobs = [("/states/enqueue", poll)] * math.ceil(n / BATCH)
    jobs += [(f"/state/{k:024x}/executed", report) for k in range(n)]
    jobs.reverse()

    async def worker() -> None:
        while jobs:
            status, data = await post(*jobs.pop())
            assert status == 200, (status, data[:200])

    async with http11:
        before = clock()
        async with anyio.create_task_group() as tg:
            for _ in range(WORKERS):
                tg.start_soon(worker)
        used = clock() - before
    return used / n * 1e6


def _served_round(variant: str, n: int) -> float:
    with _dev_server(variant) as (uri, clock):
        measure = _drain_served if variant in ("fast", "normal") else _load_served
        return float(anyio.run(measure, uri, clock, n, backend="asyncio"))


def _summary(samples: list[float]) -> dict[str, Any]:
    return {"median_us": statistics.median(samples), "min_us": min(samples),
            "samples_us": [round(s, 1) for s in samples]}


def test_fake_server_cpu_per_state_served(benchmark: Any, full: bool) -> None:
    # Five rounds: on a shared VM single rounds of the same code spread by 1.5x.
    n, rounds = (10_000, 5) if full else (100, 1)
    load_start = load_average()

    def measure() -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {variant: [] for variant in SERVED}
        for _ in range(rounds):  # alternating, so that every variant meets the same load
            for variant in SERVED:
                samples[variant].append(_served_round(variant, n))
        return samples

    samples = benchmark.pedantic(measure, rounds=1)
    context = {
        "n": n, "batch_size": BATCH, "workers": WORKERS, "rounds": rounds,
        "parser": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "orjson": importlib.util.find_spec("orjson") is not None,
        "uvloop": importlib.util.find_spec("uvloop") is not None,
        "loadavg_start": load_start, "loadavg_end": load_average(),
    }
    for variant, values in samples.items():
        stats = _summary(values)
        record(benchmark, f"fake/served/{variant}", stats["median_us"], "us", **stats, **context)


# -- in-process -----------------------------------------------------------------------------


async def _inprocess_round(variant: str, n: int) -> float:
    sm = FakeStateManager(record_requests=True)
    if variant == "normal":
        sm.app = create_app(sm.engine, api_key=sm.api_key, recorder=sm.requests,
                            before_request=sm.engine.fire_due_triggers,
                            after_request=sm._after_request, fast_path=False)
        sm.transport = httpx.ASGITransport(app=sm.app)
    async with sm, sm.client() as client:
        await setup_drain_graph(client, NS)
        await prepare_fanout(client, NS, n)
        post = asgi_post(sm.transport, uri=sm.uri, ns=NS, key=sm.api_key)

        async def call(path: str, body: bytes) -> Any:
            status, answer = await post(path, body)
            assert status == 200, (status, answer[:200])
            return json.loads(answer)

        poll = json.dumps({"nodes": [WORK_NODE], "batch_size": BATCH}).encode()
        report = json.dumps({"outputs": [{"o": "done"}]}).encode()
        done = 0
        # A full collection first: otherwise when the next one over the stored states comes
        # depends on what ran before in this process (a normal-app round before made fast-path
        # rounds 1.5-2x slower).
        gc.collect()
        start = time.process_time()
        while done < n:
            if variant == "engine":
                states = sm.engine.enqueue(NS, nodes=[WORK_NODE], batch_size=BATCH)["states"]
                for state in states:
                    sm.engine.executed(NS, state["state_id"], outputs=[{"o": "done"}])
            else:
                states = (await call("/states/enqueue", poll))["states"]
                for state in states:
                    await call(f"/state/{state['state_id']}/executed", report)
            assert states
            done += len(states)
        return (time.process_time() - start) / n * 1e6


def test_fake_app_cpu_per_state_in_process(benchmark: Any, full: bool) -> None:
    n, rounds = (5_000, 5) if full else (100, 1)

    def measure() -> dict[str, list[float]]:
        samples: dict[str, list[float]] = {"fast": [], "normal": [], "engine": []}
        for _ in range(rounds):
            for variant in samples:
                samples[variant].append(run("asyncio", _inprocess_round, variant, n))
        return samples

    samples = benchmark.pedantic(measure, rounds=1)
    for variant, values in samples.items():
        stats = _summary(values)
        record(benchmark, f"fake/inproc_app/{variant}", stats["median_us"], "us", **stats,
               n=n, rounds=rounds)

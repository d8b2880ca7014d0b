"""Shared benchmark plumbing: state-manager targets, runtime settings, figures.

A *target* is the fake state manager reached either in-process (``httpx.ASGITransport``, no
sockets) or over loopback (``FakeStateManager.serve_in_thread()``: uvicorn in a background thread
of this process). Figures go into ``benchmark.extra_info`` under ``"figure"``; ``report.py`` reads
them back from the ``--benchmark-json`` file, so the report shows exactly what one run measured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest

from fake_state_manager import FakeStateManager


@dataclass(frozen=True)
class Settings:
    """Runtime settings under test (contract §8.2 parameter names)."""

    name: str
    batch_size: int
    workers: int
    poll_interval: float


DEFAULTS = Settings("defaults", batch_size=16, workers=4, poll_interval=1.0)
TUNED = Settings("tuned", batch_size=64, workers=16, poll_interval=0.05)
SETTINGS = {s.name: s for s in (DEFAULTS, TUNED)}


@dataclass
class Target:
    """One state manager as a contender sees it."""

    mode: str  # "inproc" or "loopback"
    sm: FakeStateManager
    client: httpx.AsyncClient  # for the harness's own setup and completion checks
    uri: str
    key: str
    transport: httpx.AsyncBaseTransport | None  # None over loopback: a real socket

    def requests(self) -> list[Any]:
        return list(self.sm.requests)


@asynccontextmanager
async def open_target(mode: str, *, record_requests: bool = True) -> AsyncIterator[Target]:
    """Start a fresh fake state manager (real clock) reachable in ``mode``."""
    sm = FakeStateManager(record_requests=record_requests)
    if mode == "inproc":
        async with sm, sm.client() as client:
            yield Target(mode, sm, client, sm.uri, sm.api_key, sm.transport)
    elif mode == "loopback":
        with sm.serve_in_thread(host="127.0.0.1", port=0) as uri:
            headers = {"x-api-key": sm.api_key}
            async with httpx.AsyncClient(base_url=uri, headers=headers, timeout=60) as client:
                yield Target(mode, sm, client, uri, sm.api_key, None)
    else:
        raise ValueError(f"unknown target mode {mode!r}: use 'inproc' or 'loopback'")


async def wait_for_first_poll(target: Target, ns: str) -> None:
    """Return once a runtime has polled ``ns``: it is registered and its poll loop is running."""
    path = f"/v0/namespace/{ns}/states/enqueue"
    # The request log is appended by the server, possibly in its own thread: nothing to await.
    while not any(r.path == path for r in target.requests()):  # noqa: ASYNC110
        await anyio.sleep(0.01)


async def run_runtime_until(
    runtime: Any, done: Callable[[], Awaitable[Any]], *, limit: float
) -> Any:
    """Run ``runtime.run()`` until ``done()`` returns, then stop it gracefully."""
    result: Any = None
    with anyio.fail_after(limit):  # deadlock guard, not a performance assertion
        async with anyio.create_task_group() as tg:
            tg.start_soon(runtime.run)
            try:
                result = await done()
            finally:
                runtime.stop()
    return result


def run(backend: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run ``fn(*args)`` in a fresh event loop of ``backend`` (pytest-benchmark is synchronous)."""
    return anyio.run(fn, *args, backend=backend)


# Figures that could not be measured in this run, with the reason (written to the JSON file by
# conftest's pytest_benchmark_update_json hook; the report prints them as MISSING).
MISSING: dict[str, str] = {}


def record(
    benchmark: Any, key: str, value: float | None, unit: str, **info: Any
) -> dict[str, Any]:
    """Attach one figure (plus context) to the benchmark for the report."""
    figure = {"key": key, "value": value, "unit": unit, **info}
    print(f"\n[figure] {key} = {value} {unit}", flush=True)  # progress with `pytest -s`
    benchmark.extra_info.setdefault("figures", []).append(figure)
    return figure


def full_size(request: pytest.FixtureRequest | pytest.Metafunc) -> bool:
    """True under ``--benchmark-enable``/without ``--benchmark-disable``: use the real sizes."""
    config = request.config
    enabled = bool(config.getoption("benchmark_enable", False))
    return enabled or not bool(config.getoption("benchmark_disable", False))

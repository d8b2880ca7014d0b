"""Shared benchmark plumbing: state-manager targets, runtime settings, figures.

A *target* is the fake state manager reached either in-process (``httpx.ASGITransport``, no
sockets) or over loopback (uvicorn in a separate process, ``_server.py``). Figures go into
``benchmark.extra_info["figures"]``; ``report.py`` reads them back from the ``--benchmark-json``
file, so the report shows exactly what one run measured.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from benchmarks._server import LOG_PATH
from exo_ref import Http11Transport
from fake_state_manager import DEFAULT_API_KEY, FakeStateManager

ROOT = Path(__file__).resolve().parent.parent


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


@dataclass(frozen=True)
class Logged:
    """One entry of the fake's request log (the fields of ``RecordedRequest`` we need)."""

    time: float
    method: str
    path: str
    status: int


@dataclass
class Target:
    """One state manager as a contender sees it."""

    mode: str  # "inproc" or "loopback"
    sm: FakeStateManager | None  # in-process only; over loopback it lives in another process
    client: httpx.AsyncClient  # for the harness's own setup and completion checks
    uri: str
    key: str
    transport: httpx.AsyncBaseTransport | None  # None over loopback: a real socket
    # Over loopback: the client's exo_ref HTTP/1.1 transport, for the floor's direct requests.
    direct: httpx.AsyncBaseTransport | None = None
    # Over loopback: the server process, whose CPU time the drain figures report (_cpu).
    server_pid: int | None = None

    async def requests(self) -> list[Logged]:
        """The fake's request log so far."""
        if self.sm is not None:
            return [Logged(r.time, r.method, r.path, r.status) for r in list(self.sm.requests)]
        response = await self.client.get(LOG_PATH)
        response.raise_for_status()
        return [Logged(*entry) for entry in response.json()]


@asynccontextmanager
async def open_target(mode: str, *, record_requests: bool = True) -> AsyncIterator[Target]:
    """Start a fresh fake state manager (real clock) reachable in ``mode``.

    ``inproc``: ``httpx.ASGITransport``, no sockets, same event loop. ``loopback``: uvicorn in a
    separate process (``_server.py``), reached over 127.0.0.1.
    """
    if mode == "inproc":
        sm = FakeStateManager(record_requests=record_requests)
        async with sm, sm.client() as client:
            yield Target(mode, sm, client, sm.uri, sm.api_key, sm.transport)
    elif mode == "loopback":
        with _server_process(DEFAULT_API_KEY) as (uri, pid):
            headers = {"x-api-key": DEFAULT_API_KEY}
            # The floor and the harness use the runtime's own HTTP/1.1 transport over loopback,
            # so exo_ref/floor compares runtime machinery, not two HTTP stacks.
            http11 = Http11Transport()
            async with httpx.AsyncClient(
                base_url=uri, headers=headers, timeout=60, transport=http11
            ) as client:
                yield Target(mode, None, client, uri, DEFAULT_API_KEY, None, http11, pid)
    else:
        raise ValueError(f"unknown target mode {mode!r}: use 'inproc' or 'loopback'")


@contextmanager
def _server_process(key: str) -> Iterator[tuple[str, int]]:
    with server_process(["-m", "benchmarks._server", key]) as (uri, pid):
        _wait_until_up(uri)
        yield uri, pid


@contextmanager
def server_process(args: Sequence[str], *, announce: str = "") -> Iterator[tuple[str, int]]:
    """Run ``python ARGS`` from the checkout while the block runs; yield ``(its URI, its pid)``.

    The server announces its base URI on stdout: on the first line that starts with
    ``announce`` (the rest of that line). It is terminated (killed after 30 s) on exit.
    """
    with subprocess.Popen(
        [sys.executable, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    ) as process:
        try:
            assert process.stdout is not None
            uri = ""
            for line in process.stdout:
                if line.startswith(announce):
                    uri = line[len(announce):].strip()
                    break
            if not uri.startswith("http://"):
                raise RuntimeError(
                    f"`python {' '.join(args)}` did not start a server (exit {process.poll()})"
                )
            yield uri, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_up(uri: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            status = httpx.get(f"{uri}/health", timeout=5).status_code
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
        else:
            if status == 200:
                return
            if time.monotonic() > deadline:  # up, but broken: fail instead of waiting forever
                raise RuntimeError(f"the benchmark server answers GET /health with {status}")
        time.sleep(0.02)


async def wait_for_first_poll(target: Target, ns: str) -> None:
    """Return once a runtime has polled ``ns``: it is registered and its poll loop is running."""
    path = f"/v0/namespace/{ns}/states/enqueue"
    # The request log is appended by the server, possibly in its own thread: nothing to await.
    while not any(r.path == path for r in await target.requests()):  # noqa: ASYNC110
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


def full_size(request: pytest.FixtureRequest | pytest.Metafunc | pytest.Config) -> bool:
    """True under ``--benchmark-enable``/without ``--benchmark-disable``: use the real sizes."""
    config = request if isinstance(request, pytest.Config) else request.config
    enabled = bool(config.getoption("benchmark_enable", False))
    return enabled or not bool(config.getoption("benchmark_disable", False))

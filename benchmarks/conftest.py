"""Benchmark configuration: backends, and sizes that depend on whether benchmarks are enabled.

In the normal test run (``--benchmark-disable`` from pyproject) every benchmark runs once at a
small size, as a correctness check. ``tox -e bench`` passes ``--benchmark-enable`` and gets the
sizes the benchmarks report. The size parameters are generated here so that the check run does
not repeat the same small case under several size labels.
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

import pytest

from benchmarks._harness import MISSING, full_size
from benchmarks._upstream import find_upstream_python

_LOAD_AT_START: list[float] = []

# name -> (sizes when enabled, sizes in the check run)
_SIZES: dict[str, tuple[list[object], list[object]]] = {
    # Issue 5's sizes: 1,000 and 10,000 states, in-process and over loopback.
    "drain_case": (
        [("inproc", 1_000), ("inproc", 10_000), ("loopback", 1_000), ("loopback", 10_000)],
        [("inproc", 40), ("loopback", 40)],
    ),
    "drain_settings": (["defaults", "tuned"], ["tuned"]),  # the check run: the quicker one
    "upstream_settings": (["defaults", "tuned"], ["tuned"]),
    # (backend, poll_interval): the 1 s case costs ~1 s per sample, so asyncio only.
    "latency_case": ([("asyncio", 1.0), ("asyncio", 0.1), ("trio", 0.1)],
                     [("asyncio", 0.1), ("trio", 0.1)]),
    "stored_states": ([1_000, 100_000], [600]),
    "sync_workers": ([1, 2, 4], [2]),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, (enabled, check) in _SIZES.items():
        if name in metafunc.fixturenames:
            sizes = enabled if full_size(metafunc) else check
            ids = [
                "-".join(map(str, s)) if isinstance(s, tuple) else f"{name}={s}" for s in sizes
            ]
            metafunc.parametrize(name, sizes, ids=ids)


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def full(request: pytest.FixtureRequest) -> bool:
    """True when benchmarks are enabled (full sizes), False in the check run."""
    return full_size(request)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _deselect_upstream_without_interpreter(config, items)


def _deselect_upstream_without_interpreter(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Collect the upstream drain only where the upstream SDK can run (never a skip).

    The upstream SDK needs an external Python 3.12 environment with ``exospherehost`` (``tox -e
    bench`` has one). Without it the check is deselected; with benchmarks enabled the report then
    prints the figure as MISSING with the reason.
    """
    upstream = [item for item in items if item.name.startswith("test_drain_upstream")]
    if not upstream:
        return
    python, how = find_upstream_python()
    if python is not None:
        return
    if full_size(config):
        for item in upstream:
            callspec = getattr(item, "callspec", None)
            settings = callspec.params.get("upstream_settings") if callspec else None
            MISSING[f"drain/upstream/{settings}"] = how
    config.hook.pytest_deselected(items=upstream)
    items[:] = [item for item in items if item not in upstream]


def pytest_sessionstart(session: pytest.Session) -> None:
    _LOAD_AT_START[:] = [time.time(), *os.getloadavg()]


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list[Any], output_json: dict[str, Any]
) -> None:
    # Context the report needs: what could not be measured, and how busy the machine was.
    output_json["exo_ref"] = {
        "missing": dict(MISSING),
        "cpu_count": os.cpu_count(),
        # uvicorn uses httptools when it is importable, else h11 (pure Python).
        "server_parser": "httptools" if importlib.util.find_spec("httptools") else "h11",
        "loadavg_start": _LOAD_AT_START[1:],
        "loadavg_end": list(os.getloadavg()),
        "started": _LOAD_AT_START[0] if _LOAD_AT_START else None,
        "finished": time.time(),
    }

"""Small ``--benchmark-json``-shaped inputs for the report's tests (figures as the benchmarks
record them, ``benchmarks/_harness.record``)."""

from __future__ import annotations

from typing import Any

_SETTINGS = {"defaults": (16, 4, 1.0), "tuned": (64, 16, 0.05)}
UPSTREAM_REASON = "no upstream environment (the venv is missing)"


def drain(
    contender: str, mode: str, settings: str, *, rate: float, runtime_cpu: float | None,
    server_cpu: float | None = None, backend: str = "asyncio", n: int = 1000,
) -> dict[str, Any]:
    batch_size, workers, poll_interval = _SETTINGS[settings]
    return {
        "key": f"drain/{contender}/{mode}/{backend}/{settings}/{n}", "value": rate,
        "unit": "states/s", "n": n, "seconds": n / rate, "polls": 20,
        "runtime_cpu_us": runtime_cpu, "server_cpu_us": server_cpu,
        "loadavg": [0.3, 0.4, 0.5], "batch_size": batch_size, "workers": workers,
        "poll_interval": poll_interval,
    }


def bench_json(
    figures: list[dict[str, Any]], *, missing: dict[str, str] | None = None,
    load: float = 0.3,
) -> dict[str, Any]:
    return {
        "datetime": "2026-12-02T10:00:00+00:00",
        "machine_info": {"system": "Linux", "release": "6.1", "python_implementation": "CPython",
                         "python_version": "3.12.1", "cpu": {"brand_raw": "Test CPU"}},
        "exo_ref": {"missing": missing or {}, "cpu_count": 2, "server_parser": "httptools",
                    "loadavg_start": [load, 0.4, 0.5], "loadavg_end": [load, 0.4, 0.5],
                    "started": 1000.0, "finished": 1600.0},
        "benchmarks": [{"name": "test_drain", "extra_info": {"figures": figures}}],
    }


def sample_run(*, upstream: bool = True, load: float = 0.3) -> dict[str, Any]:
    """A run where the in-process exo_ref/floor target is MET and loopback trio/asyncio MISSED;
    upstream present (tuned, loopback) or MISSING with a reason."""
    figures = [
        drain("exo_ref", "inproc", "tuned", rate=1600, runtime_cpu=100),
        drain("floor", "inproc", "tuned", rate=1700, runtime_cpu=90),
        drain("exo_ref", "loopback", "tuned", rate=1250, runtime_cpu=100, server_cpu=150),
        drain("exo_ref", "loopback", "tuned", rate=900, runtime_cpu=200, server_cpu=160,
              backend="trio"),
        drain("floor", "loopback", "tuned", rate=1300, runtime_cpu=95, server_cpu=150),
        drain("exo_ref", "loopback", "defaults", rate=1200, runtime_cpu=110, server_cpu=155),
    ]
    missing = {}
    if upstream:
        figures.append(
            drain("upstream", "loopback", "tuned", rate=500, runtime_cpu=800, server_cpu=300)
        )
    else:
        missing = {"drain/upstream/tuned": UPSTREAM_REASON}
    return bench_json(figures, missing=missing, load=load)

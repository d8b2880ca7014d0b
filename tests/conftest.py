"""Shared test configuration: hypothesis profiles; every async test runs on asyncio and on trio."""

from __future__ import annotations

import inspect
import os

import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles, chosen by HYPOTHESIS_PROFILE (tox passes it through; default "ci").
# - ci: deterministic (derandomize: the same examples on every run and machine, so a red CI run
#   reproduces locally), no example database, modest example counts, no per-example deadline
#   (examples do I/O through the fake), and the reproduction blob printed on failure.
# - thorough: random and many more examples, for hunting bugs locally before a release.
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=25,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough",
    max_examples=500,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # The equivalent of anyio_mode = "auto": mark every coroutine test for anyio's plugin at
    # collection time (before anyio's own hook, which then adds the anyio_backend fixture), so
    # @pytest.mark.parametrize and the backend parameters combine. (B2: marking later, in
    # pytest_collection_modifyitems, made anyio rebuild the items and drop other parameters.)
    if not isinstance(collector, pytest.Module | pytest.Class):
        return
    if collector.istestfunction(obj, name):
        hypothesis = getattr(obj, "hypothesis", None)
        inner = hypothesis.inner_test if hypothesis is not None else obj
        if inspect.iscoroutinefunction(inner):
            pytest.mark.anyio(obj)

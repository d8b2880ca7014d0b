"""Shared test configuration: hypothesis profiles; every async test runs on asyncio and on trio."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# EXO_FAKE_STORE=sqlite: every FakeStateManager of the session gets a database (tox -e sqlite).
from tests.store_backend import sqlite_store_check, sqlite_store_session

__all__ = ["anyio_backend", "sqlite_store_check", "sqlite_store_session"]

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


# anyio's pytest plugin runs every coroutine test (anyio_mode = "auto" in pyproject.toml) once
# per parameter of this fixture. Module scope, like anyio's own default: a test or a conftest can
# still pick one backend with @pytest.mark.parametrize("anyio_backend", [...]) or its own fixture.
@pytest.fixture(
    scope="module", params=[pytest.param("asyncio", id="asyncio"), pytest.param("trio", id="trio")]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)

"""Fixtures for the conformance tests: exo_ref against the in-process fake.

The battery (test_battery.py) picks its own targets; the live one is a parameter only when
``EXO_CONFORMANCE_URI`` is set, so the normal run neither contains nor skips it.

test_upstream_blackbox.py judges the upstream ``exospherehost`` SDK (Python >= 3.12, not a
dependency of exo-ref): where it cannot be imported the file is left out of collection, as
tests/upstream is; ``EXO_REQUIRE_UPSTREAM=1`` (the ``upstream`` tox env) makes that an error.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

from conformance import RuntimeTarget, StateManagerFactory, exo_ref_target, in_process_fake

if importlib.util.find_spec("exospherehost") is None:
    if os.environ.get("EXO_REQUIRE_UPSTREAM"):
        raise RuntimeError(
            "EXO_REQUIRE_UPSTREAM is set but exospherehost is not importable: "
            "install exospherehost==0.0.3 on Python >= 3.12 (tox -e upstream does)"
        )
    collect_ignore = ["test_upstream_blackbox.py"]


@pytest.fixture
def runtime() -> RuntimeTarget:
    """exo_ref's Runtime."""
    return exo_ref_target()


@pytest.fixture
def fake() -> StateManagerFactory:
    """The fake state manager in-process, on an auto-advancing ManualClock."""
    return in_process_fake()

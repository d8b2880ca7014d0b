"""Fixtures for the conformance tests: exo_ref against the in-process fake.

The battery (test_battery.py) picks its own targets; the live one is a parameter only when
``EXO_CONFORMANCE_URI`` is set, so the normal run neither contains nor skips it.

test_upstream_blackbox.py judges the upstream ``exospherehost`` SDK (Python >= 3.12, not a
dependency of exo-ref): where it cannot be imported the file is left out of collection, as
tests/upstream is; ``EXO_REQUIRE_UPSTREAM=1`` (the ``upstream`` tox env) makes that an error.
"""

from __future__ import annotations

import pytest

from conformance import RuntimeTarget, StateManagerFactory, exo_ref_target, in_process_fake
from tests.optional import UPSTREAM, available

if not available(*UPSTREAM):
    collect_ignore = ["test_upstream_blackbox.py"]


@pytest.fixture
def runtime() -> RuntimeTarget:
    """exo_ref's Runtime."""
    return exo_ref_target()


@pytest.fixture
def fake() -> StateManagerFactory:
    """The fake state manager in-process, on an auto-advancing ManualClock."""
    return in_process_fake()

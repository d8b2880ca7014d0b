"""Fixtures for the conformance tests: exo_ref against the in-process fake.

The battery (test_battery.py) picks its own targets; the live one is a parameter only when
``EXO_CONFORMANCE_URI`` is set, so the normal run neither contains nor skips it.
"""

from __future__ import annotations

import pytest

from conformance import RuntimeTarget, StateManagerFactory, exo_ref_target, in_process_fake


@pytest.fixture
def runtime() -> RuntimeTarget:
    """exo_ref's Runtime."""
    return exo_ref_target()


@pytest.fixture
def fake() -> StateManagerFactory:
    """The fake state manager in-process, on an auto-advancing ManualClock."""
    return in_process_fake()

"""Targets for the conformance tests: exo_ref against the in-process fake by default.

``test_live.py`` runs against a state manager somebody else operates; it is collected only when
``EXO_CONFORMANCE_URI`` is set, so the normal run neither contains nor skips it.
"""

from __future__ import annotations

import os

import pytest

from conformance import RuntimeTarget, StateManagerFactory, exo_ref_target, in_process_fake

collect_ignore = [] if os.environ.get("EXO_CONFORMANCE_URI") else ["test_live.py"]


@pytest.fixture
def runtime() -> RuntimeTarget:
    """exo_ref's Runtime."""
    return exo_ref_target()


@pytest.fixture
def fake() -> StateManagerFactory:
    """The fake state manager in-process, on an auto-advancing ManualClock."""
    return in_process_fake()

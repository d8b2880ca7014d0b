"""One scenario, every rule that applies to it."""

from __future__ import annotations

from conformance._batching import assert_batching
from conformance._concurrency import assert_max_concurrency
from conformance._errors import assert_outcomes
from conformance._harness import Observation, Scenario, run_scenario
from conformance._registration import assert_registration
from conformance._targets import RuntimeTarget, StateManagerFactory
from conformance._timing import assert_poll_timing, assert_shutdown_stopped_polling

__all__ = ["check_scenario"]


async def check_scenario(
    target: RuntimeTarget, state_manager: StateManagerFactory, scenario: Scenario
) -> Observation:
    """Run ``scenario`` to completion and check registration, batching, concurrency, error
    reporting and poll timing (T1 always, T2 when every execution is instant and no fault is
    injected, T4 at the stop)."""
    obs = await run_scenario(target, state_manager, scenario)
    assert_registration(obs)
    assert_batching(obs)
    assert_max_concurrency(obs)
    assert_outcomes(obs)
    if not obs.fault_actions:
        assert_poll_timing(obs)
    assert_shutdown_stopped_polling(obs)
    return obs

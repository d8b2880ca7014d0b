"""exo_ref against a live state manager: ``EXO_CONFORMANCE_URI`` / ``EXO_CONFORMANCE_KEY``.

Collected only when ``EXO_CONFORMANCE_URI`` is set (see conftest.py). Each check runs in a fresh
namespace. A live server keeps no request log we can read, so the check that needs one (O1) is
skipped here with that reason; every other rule is observed from the runtime's side of the wire.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings

from conformance import (
    NodeShape,
    Scenario,
    StateManagerFactory,
    assert_server_log_agrees,
    check_concurrency_reaches_workers,
    check_idle_poll_spacing,
    check_registration,
    check_scenario,
    check_shutdown_stops_polling,
    exo_ref_target,
    live_state_manager,
    run_scenario,
)
from conformance._scenarios import scenarios

from ._support import examples

pytestmark = pytest.mark.live

TARGET = exo_ref_target()


def _live() -> StateManagerFactory:
    return live_state_manager(
        os.environ["EXO_CONFORMANCE_URI"], os.environ.get("EXO_CONFORMANCE_KEY", "")
    )


async def test_registration_live() -> None:
    await check_registration(TARGET, _live(), [NodeShape("LiveNode", ("a",), ("b",), ("s",))])


@settings(max_examples=examples(3))
@given(scenario=scenarios(TARGET, max_cases=5, instant_only=True, poll_intervals=(0.5,)))
async def test_instant_scenarios_live(scenario: Scenario) -> None:
    await check_scenario(TARGET, _live(), scenario)


@settings(max_examples=examples(2))
@given(scenario=scenarios(TARGET, max_cases=4, faults=True, poll_intervals=(0.5,), requeue=False))
async def test_faults_live(scenario: Scenario) -> None:
    await check_scenario(TARGET, _live(), scenario)


async def test_concurrency_live() -> None:
    await check_concurrency_reaches_workers(
        TARGET, _live(), workers=3, states=5, batch_size=2, poll_interval=0.5
    )


async def test_idle_poll_spacing_live() -> None:
    await check_idle_poll_spacing(TARGET, _live(), poll_interval=0.5, polls=4)


async def test_shutdown_live() -> None:
    await check_shutdown_stops_polling(TARGET, _live(), poll_interval=0.5)


async def test_server_log_agrees_live() -> None:
    obs = await run_scenario(TARGET, _live(), Scenario((), (), poll_interval=0.5))
    if obs.server_requests is None:
        pytest.skip("rule O1 needs the state manager's request log; a live server keeps none")
    assert_server_log_agrees(obs)

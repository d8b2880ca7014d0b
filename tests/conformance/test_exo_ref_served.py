"""exo_ref against the fake served by uvicorn on loopback (real sockets, real clock).

A smaller subset than the in-process module, with few examples: it proves the checks and the
runtime work over real HTTP, where timing rules use the real-clock tolerance (conformance._timing).
"""

from __future__ import annotations

from hypothesis import given, settings

from conformance import (
    NodeShape,
    Scenario,
    check_concurrency_reaches_workers,
    check_idle_poll_spacing,
    check_registration,
    check_scenario,
    check_shutdown_stops_polling,
    exo_ref_target,
    served_fake,
)
from conformance._scenarios import scenarios

from ._support import examples

TARGET = exo_ref_target()


async def test_registration_over_loopback() -> None:
    shape = NodeShape("Served", ("a", "b"), ("c",), ("token",))
    await check_registration(TARGET, served_fake(), [shape])


@settings(max_examples=examples(2))
@given(scenario=scenarios(TARGET, max_cases=5, instant_only=True, poll_intervals=(0.2,)))
async def test_instant_scenarios_over_loopback(scenario: Scenario) -> None:
    await check_scenario(TARGET, served_fake(), scenario)


@settings(max_examples=examples(2))
@given(scenario=scenarios(TARGET, max_cases=4, faults=True, poll_intervals=(0.2,), requeue=False))
async def test_faults_over_loopback_lose_nothing(scenario: Scenario) -> None:
    await check_scenario(TARGET, served_fake(), scenario)


async def test_concurrency_over_loopback() -> None:
    await check_concurrency_reaches_workers(
        TARGET, served_fake(), workers=3, states=5, batch_size=2, poll_interval=0.2
    )


async def test_idle_poll_spacing_over_loopback() -> None:
    await check_idle_poll_spacing(TARGET, served_fake(), poll_interval=0.5, polls=4)


async def test_shutdown_over_loopback() -> None:
    await check_shutdown_stops_polling(TARGET, served_fake(), poll_interval=0.2)

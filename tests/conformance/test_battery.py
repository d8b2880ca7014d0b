"""The conformance battery: exo_ref held to every check, against each state manager target.

Each test is one check, parametrised over the targets it runs on (``target``, then the anyio
backend from tests/conftest.py):

- ``in_process``: the fake in-process on an auto-advancing ManualClock. Every spacing is an exact
  virtual time and waiting costs nothing, so it gets the most examples and the widest parameters,
  and the checks a real clock cannot afford (long sleeps, error back-off up to its cap, a blocked
  sync node, invalid registrations are cheap here and add nothing over the wire) run only here.
- ``served``: the fake served by uvicorn on loopback (real sockets, real clock). Few, small
  examples: they prove the checks and the runtime work over real HTTP, where timing rules use the
  real-clock tolerance (conformance._timing).
- ``live``: a state manager somebody else operates (``EXO_CONFORMANCE_URI`` /
  ``EXO_CONFORMANCE_KEY``), a fresh namespace per check. It is a parameter only when
  ``EXO_CONFORMANCE_URI`` is set, so the normal run neither contains nor skips it; its items carry
  the ``live`` marker (``-m "not live"`` leaves them out).

What differs per target (example counts, case counts, poll intervals) is data in :class:`Target`;
the checks are written once. A generated check explores its target's strategy in a nested
hypothesis test (:func:`explore`), because the example count is per target and hypothesis fixes
it per decorated function; each example runs on a fresh event loop of the item's backend, as
anyio's plugin does for an async ``@given`` test.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import (
    FaultKind,
    NodeShape,
    Scenario,
    StateManagerFactory,
    assert_server_log_agrees,
    check_concurrency_reaches_workers,
    check_error_backoff,
    check_idle_poll_spacing,
    check_invalid_nodes_refused,
    check_registration,
    check_scenario,
    check_shutdown_stops_polling,
    check_sync_node_does_not_stall,
    exo_ref_target,
    in_process_fake,
    invalid_node_problems,
    live_state_manager,
    node_shape_sets,
    run_scenario,
    scenarios,
    served_fake,
)

from ._support import examples

T = TypeVar("T")

RUNTIME = exo_ref_target()


@dataclass(frozen=True)
class Explore(Generic[T]):
    """A strategy and how many examples (under the ci profile) a check draws from it."""

    strategy: st.SearchStrategy[T]
    examples: int


def explore(backend: str, plan: Explore[T], check: Callable[[T], Awaitable[None]]) -> None:
    """Run ``check`` on up to ``plan.examples`` examples of ``plan.strategy`` (scaled by the
    hypothesis profile), each example on a fresh event loop of ``backend``."""

    @settings(max_examples=examples(plan.examples))
    @given(plan.strategy)
    def example(value: T) -> None:
        anyio.run(check, value, backend=backend)

    example()


@dataclass(frozen=True)
class Target:
    """A state manager the battery runs exo_ref against, with the sizes its clock affords.

    ``concurrency`` and ``idle`` draw keyword arguments for check_concurrency_reaches_workers and
    check_idle_poll_spacing; ``shutdown_poll_interval`` is the poll interval of the shutdown check.
    """

    id: str
    state_manager: Callable[[], StateManagerFactory]
    registration: Explore[tuple[NodeShape, ...]]
    instant: Explore[Scenario]
    faults: Explore[Scenario]
    concurrency: Explore[dict[str, Any]]
    idle: Explore[dict[str, Any]]
    shutdown_poll_interval: float
    marks: tuple[pytest.MarkDecorator, ...] = ()


def every_rule(target: Target) -> Callable[[Scenario], Awaitable[None]]:
    """The check the scenario tests explore: one scenario on ``target``, judged by every rule."""

    async def check(scenario: Scenario) -> None:
        await check_scenario(RUNTIME, target.state_manager(), scenario)

    return check


# A real clock makes each example cost real seconds: one fixed registration shape, a few small
# scenarios without re-enqueues (whose delays under faults are long), fixed concurrency settings.
_FIXED_SHAPE = (NodeShape("Fixed", ("a", "b"), ("c",), ("token",)),)


def _real_clock(
    id: str,
    state_manager: Callable[[], StateManagerFactory],
    *,
    poll_interval: float,
    instant_examples: int,
    marks: tuple[pytest.MarkDecorator, ...] = (),
) -> Target:
    polls = (poll_interval,)
    return Target(
        id=id,
        state_manager=state_manager,
        registration=Explore(st.just(_FIXED_SHAPE), 1),
        instant=Explore(
            scenarios(RUNTIME, max_cases=5, instant_only=True, poll_intervals=polls),
            instant_examples,
        ),
        faults=Explore(
            scenarios(RUNTIME, max_cases=4, faults=True, poll_intervals=polls, requeue=False), 2
        ),
        concurrency=Explore(
            st.just({"workers": 3, "states": 5, "batch_size": 2, "poll_interval": poll_interval}),
            1,
        ),
        idle=Explore(st.just({"poll_interval": 0.5, "polls": 4}), 1),
        shutdown_poll_interval=poll_interval,
        marks=marks,
    )


IN_PROCESS = Target(
    id="in_process",
    state_manager=in_process_fake,
    registration=Explore(node_shape_sets(), 6),
    instant=Explore(scenarios(RUNTIME, instant_only=True, max_cases=14), 6),
    faults=Explore(scenarios(RUNTIME, faults=True), 10),
    concurrency=Explore(
        st.fixed_dictionaries(
            {
                "workers": st.integers(1, 5),
                "states": st.integers(1, 8),
                "batch_size": st.integers(1, 6),
            }
        ),
        5,
    ),
    idle=Explore(st.fixed_dictionaries({"poll_interval": st.sampled_from([0.25, 1.0, 3.0])}), 3),
    shutdown_poll_interval=1.0,
)

SERVED = _real_clock("served", served_fake, poll_interval=0.2, instant_examples=2)


def _live() -> StateManagerFactory:
    return live_state_manager(
        os.environ["EXO_CONFORMANCE_URI"], os.environ.get("EXO_CONFORMANCE_KEY", "")
    )


LIVE = (
    _real_clock("live", _live, poll_interval=0.5, instant_examples=3, marks=(pytest.mark.live,))
    if os.environ.get("EXO_CONFORMANCE_URI")
    else None
)


def over(*targets: Target | None) -> pytest.MarkDecorator:
    """Parametrise a test's ``target`` over ``targets`` (an unconfigured live target is None)."""
    params = [pytest.param(t, id=t.id, marks=t.marks) for t in targets if t is not None]
    return pytest.mark.parametrize("target", params)


EVERY_TARGET = over(IN_PROCESS, SERVED, LIVE)


# -- on every target -------------------------------------------------------------------------


@EVERY_TARGET
def test_registration_matches_node_classes(target: Target, anyio_backend: str) -> None:
    async def check(shapes: tuple[NodeShape, ...]) -> None:
        await check_registration(RUNTIME, target.state_manager(), shapes)

    explore(anyio_backend, target.registration, check)


@EVERY_TARGET
def test_instant_scenarios_repoll_at_once_after_full_polls(
    target: Target, anyio_backend: str
) -> None:
    explore(anyio_backend, target.instant, every_rule(target))


@EVERY_TARGET
def test_server_faults_lose_nothing_and_change_no_outcome(
    target: Target, anyio_backend: str
) -> None:
    explore(anyio_backend, target.faults, every_rule(target))


@EVERY_TARGET
def test_concurrency_reaches_and_never_passes_workers(target: Target, anyio_backend: str) -> None:
    async def check(kwargs: dict[str, Any]) -> None:
        await check_concurrency_reaches_workers(RUNTIME, target.state_manager(), **kwargs)

    explore(anyio_backend, target.concurrency, check)


@EVERY_TARGET
def test_idle_polls_are_spaced_by_poll_interval(target: Target, anyio_backend: str) -> None:
    async def check(kwargs: dict[str, Any]) -> None:
        await check_idle_poll_spacing(RUNTIME, target.state_manager(), **kwargs)

    explore(anyio_backend, target.idle, check)


@EVERY_TARGET
async def test_shutdown_stops_polling_at_once(target: Target) -> None:
    await check_shutdown_stops_polling(
        RUNTIME, target.state_manager(), poll_interval=target.shutdown_poll_interval
    )


# -- where the clock is virtual --------------------------------------------------------------

VIRTUAL_CLOCK = over(IN_PROCESS)


@VIRTUAL_CLOCK
def test_invalid_node_classes_are_refused_before_any_request(
    target: Target, anyio_backend: str
) -> None:
    @st.composite
    def registrations(
        draw: st.DrawFn,
    ) -> tuple[tuple[NodeShape, ...], list[tuple[str, str, str]]]:
        valid = draw(node_shape_sets())
        return valid, draw(invalid_node_problems(valid))

    async def check(drawn: tuple[tuple[NodeShape, ...], list[tuple[str, str, str]]]) -> None:
        valid, problems = drawn
        await check_invalid_nodes_refused(RUNTIME, target.state_manager(), valid, problems)

    explore(anyio_backend, Explore(registrations(), 6), check)


@VIRTUAL_CLOCK
def test_generated_scenarios_follow_every_rule(target: Target, anyio_backend: str) -> None:
    explore(anyio_backend, Explore(scenarios(RUNTIME), 12), every_rule(target))


@VIRTUAL_CLOCK
async def test_blocking_sync_node_does_not_stall_the_others(target: Target) -> None:
    await check_sync_node_does_not_stall(RUNTIME, target.state_manager())


@VIRTUAL_CLOCK
def test_poll_errors_back_off_growing_and_capped(target: Target, anyio_backend: str) -> None:
    plan = Explore(
        st.tuples(
            st.sampled_from([0.5, 1.0, 2.0]),
            st.sampled_from([FaultKind.STATUS_503, FaultKind.CONNECT_ERROR, FaultKind.TIMEOUT]),
        ),
        3,
    )

    async def check(drawn: tuple[float, FaultKind]) -> None:
        poll_interval, kind = drawn
        await check_error_backoff(
            RUNTIME, target.state_manager(), poll_interval=poll_interval, kind=kind
        )

    explore(anyio_backend, plan, check)


# -- live only: rule O1 is part of check_scenario wherever the server keeps a request log; a live
# server keeps none, so this says so instead of passing silently.

if LIVE is not None:

    @over(LIVE)
    async def test_server_log_agrees(target: Target) -> None:
        obs = await run_scenario(
            RUNTIME, target.state_manager(), Scenario((), (), poll_interval=0.5)
        )
        if obs.server_requests is None:
            pytest.skip("rule O1 needs the state manager's request log; a live server keeps none")
        assert_server_log_agrees(obs)

"""The suite catches deliberately broken runtimes, so a passing run means the checks can fail.

Each mutant (tests/conformance/mutants.py) breaks one rule; each test runs the check of that
area and expects the AssertionError to name the rule. The unmutated runtime passes the very same
calls in test_battery.py, so the failures come from the mutations.
"""

from __future__ import annotations

import pytest

from conformance import (
    Behaviour,
    Case,
    NodeShape,
    Scenario,
    StateManagerFactory,
    assert_batching,
    assert_outcomes,
    assert_poll_timing,
    check_concurrency_reaches_workers,
    check_error_backoff,
    check_idle_poll_spacing,
    check_invalid_nodes_refused,
    check_registration,
    check_sync_node_does_not_stall,
    run_scenario,
)

from . import mutants

SHAPE = NodeShape("Worker", ("token",), ("result",))


def _cases(*behaviours: Behaviour) -> tuple[Case, ...]:
    return tuple(Case(f"m{i:03d}", SHAPE.name, b) for i, b in enumerate(behaviours))


# -- batching ----------------------------------------------------------------------------------


async def test_over_claim_by_asking_too_much_breaks_b1(fake: StateManagerFactory) -> None:
    scenario = Scenario((SHAPE,), _cases(*[Behaviour("one")] * 6), batch_size=2, workers=2)
    obs = await run_scenario(mutants.ask_double(), fake, scenario)
    with pytest.raises(
        AssertionError, match=r"batching rule B1: an enqueue asked for batch_size=4"
    ):
        assert_batching(obs)


async def test_over_claim_by_holding_too_many_breaks_b2(fake: StateManagerFactory) -> None:
    slow = Behaviour("sleep", seconds=1.0)
    scenario = Scenario((SHAPE,), _cases(*[slow] * 12), batch_size=4, workers=1)
    obs = await run_scenario(mutants.hold_double(), fake, scenario)
    with pytest.raises(
        AssertionError, match=r"batching rule B2: \d+ claimed-but-unstarted states exceed"
    ):
        assert_batching(obs)


async def test_swallowed_report_breaks_b3(fake: StateManagerFactory) -> None:
    scenario = Scenario((SHAPE,), _cases(Behaviour("one"), Behaviour("raise", message="x")))
    obs = await run_scenario(mutants.swallow_report(), fake, scenario)
    with pytest.raises(AssertionError, match=r"batching rule B3: claimed states never reached"):
        assert_batching(obs)


# -- concurrency -------------------------------------------------------------------------------


async def test_too_many_workers_breaks_w1(fake: StateManagerFactory) -> None:
    with pytest.raises(AssertionError, match=r"concurrency rule W1: 3 executions ran at once"):
        await check_concurrency_reaches_workers(
            mutants.exceed_workers(), fake, workers=2, states=6, batch_size=4
        )


async def test_sync_node_on_the_event_loop_breaks_w3(fake: StateManagerFactory) -> None:
    with pytest.raises(AssertionError, match=r"concurrency rule W3: a blocking synchronous"):
        await check_sync_node_does_not_stall(mutants.sync_on_loop(), fake, block_timeout=0.5)


# -- timing ------------------------------------------------------------------------------------


async def test_sleeping_after_a_full_batch_breaks_t2(fake: StateManagerFactory) -> None:
    scenario = Scenario((SHAPE,), _cases(*[Behaviour("one")] * 9), batch_size=3, workers=3)
    obs = await run_scenario(mutants.sleep_after_full_batch(), fake, scenario)
    with pytest.raises(AssertionError, match=r"timing rule T2: after a poll that filled"):
        assert_poll_timing(obs)


async def test_constant_error_backoff_breaks_t3(fake: StateManagerFactory) -> None:
    with pytest.raises(AssertionError, match=r"timing rule T3: spacing after consecutive"):
        await check_error_backoff(mutants.constant_error_backoff(), fake)


async def test_polling_after_stop_breaks_t4(fake: StateManagerFactory) -> None:
    with pytest.raises(AssertionError, match=r"timing rule T4: 1 enqueue request\(s\) were sent"):
        await check_idle_poll_spacing(mutants.polls_after_stop(), fake, poll_interval=1.0)


# -- error reporting ---------------------------------------------------------------------------


async def test_prune_reported_as_error_breaks_e1(fake: StateManagerFactory) -> None:
    scenario = Scenario((SHAPE,), _cases(Behaviour("one"), Behaviour("prune")))
    obs = await run_scenario(mutants.prune_as_error(), fake, scenario)
    with pytest.raises(AssertionError, match=r"error-reporting rule E1: case m001 \(prune\)"):
        assert_outcomes(obs)


# -- registration ------------------------------------------------------------------------------


async def test_registering_without_secrets_breaks_r1(fake: StateManagerFactory) -> None:
    shape = NodeShape("WithSecrets", ("token",), ("result",), ("api_token",))
    with pytest.raises(AssertionError, match=r"registration rule R1: node WithSecrets: secrets"):
        await check_registration(mutants.registers_without_secrets(), fake, [shape])


async def test_tolerating_invalid_nodes_breaks_r3(fake: StateManagerFactory) -> None:
    problems = [("Broken0", "field_not_str", "count")]
    with pytest.raises(AssertionError, match=r"registration rule R3: \d+ request\(s\) were sent"):
        await check_invalid_nodes_refused(
            mutants.tolerates_invalid_nodes(), fake, [SHAPE], problems
        )


# -- lifecycle ---------------------------------------------------------------------------------


async def test_a_crashing_poller_breaks_l1(fake: StateManagerFactory) -> None:
    with pytest.raises(AssertionError, match=r"lifecycle rule L1: run\(\) raised"):
        await check_idle_poll_spacing(mutants.crashes_while_polling(), fake, poll_interval=1.0)

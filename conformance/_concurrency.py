"""Worker concurrency rules; W3 guards against the upstream defect of contract §8.9 item 9.

- **W1** concurrent executions never exceed ``workers`` (measured by the probe: executions begun
  and not yet ended, swept in log order).
- **W2** concurrency reaches ``min(workers, available work)``: with N states that all block until
  released, the runtime runs ``min(workers, N)`` of them at once before any is released.
- **W3** a node whose synchronous ``def execute`` blocks does not stall the others: every other
  state is executed and reported while it blocks.
"""

from __future__ import annotations

from conformance._harness import Observation, Scenario, run_scenario
from conformance._nodes import Behaviour, Case, NodeShape
from conformance._outcomes import peak_overlap, reports_by_state, state_case
from conformance._recording import TERMINAL_KINDS
from conformance._rules import fail, require_healthy_run
from conformance._targets import RuntimeTarget, StateManagerFactory

__all__ = [
    "assert_max_concurrency",
    "check_concurrency_reaches_workers",
    "check_sync_node_does_not_stall",
    "max_concurrency",
]


def max_concurrency(obs: Observation) -> int:
    """The largest number of executions in progress at once, in the probe's event order."""
    return peak_overlap((e.start_seq, e.end_seq) for e in obs.log.executions)


def assert_max_concurrency(obs: Observation) -> None:
    """W1 on any observation."""
    peak = max_concurrency(obs)
    if peak > obs.settings.workers:
        fail(
            "concurrency",
            "W1",
            f"{peak} executions ran at once, more than workers={obs.settings.workers}",
            obs,
        )


async def check_concurrency_reaches_workers(
    target: RuntimeTarget,
    state_manager: StateManagerFactory,
    *,
    workers: int,
    states: int,
    batch_size: int,
    poll_interval: float = 1.0,
) -> Observation:
    """W1 and W2: ``states`` gated states; concurrency must reach, and never pass, the bound."""
    shape = NodeShape("GatedNode", ("token",), ("result",))
    cases = tuple(Case(f"w{i:03d}", shape.name, Behaviour("gate")) for i in range(states))
    scenario = Scenario(
        (shape,), cases, batch_size=batch_size, workers=workers, poll_interval=poll_interval
    )
    goal = min(workers, states)
    # Enough scenario-clock time for a runtime that polls once per interval to claim the goal,
    # then a few more intervals to give an over-eager runtime the chance to pass the bound.
    settle = poll_interval * (goal // max(1, batch_size) + 4)
    peak_when_released = 0

    async def hold_then_release(obs: Observation) -> None:
        nonlocal peak_when_released
        clock = obs.log.clock
        deadline = clock.now() + settle
        await obs.log.wait_for(
            lambda: max_concurrency(obs) >= goal,
            virtual_deadline=deadline,
            real_timeout=scenario.real_timeout,
            settle_polls=0,
            require_idle=False,
            alarm=True,
        )
        await obs.log.wait_for(
            lambda: max_concurrency(obs) > goal,
            virtual_deadline=clock.now() + 3 * poll_interval,
            real_timeout=scenario.real_timeout,
            settle_polls=0,
            require_idle=False,
            alarm=True,
        )
        peak_when_released = max_concurrency(obs)
        await _release_then_finish(obs)

    obs = await run_scenario(target, state_manager, scenario, during=hold_then_release)
    require_healthy_run(obs)
    assert_max_concurrency(obs)
    if peak_when_released < goal:
        fail(
            "concurrency",
            "W2",
            f"only {peak_when_released} of {states} blocked states ran at once;"
            f" expected min(workers, states) = {goal}",
            obs,
        )
    return obs


def _final_case_ids(obs: Observation) -> set[str | None]:
    """The cases whose state the server has applied a terminal report for."""
    cases = state_case(obs.log)
    return {
        cases.get(s)
        for s, xs in reports_by_state(obs.log.layer("server"), applied_only=True).items()
        if any(x.kind in TERMINAL_KINDS for x in xs)
    }


def _all_final(obs: Observation) -> bool:
    done = _final_case_ids(obs)
    return all(c.case_id in done for c in obs.scenario.cases)


async def _release_then_finish(obs: Observation) -> None:
    """Open the probe's gates, then wait until every case is final."""
    assert obs.probe is not None
    obs.probe.open_gates()
    await obs.log.wait_for(
        lambda: _all_final(obs),
        virtual_deadline=obs.log.clock.now() + obs.scenario.virtual_horizon,
        real_timeout=obs.scenario.real_timeout,
    )


async def check_sync_node_does_not_stall(
    target: RuntimeTarget,
    state_manager: StateManagerFactory,
    *,
    others: int = 6,
    workers: int = 2,
    batch_size: int = 4,
    block_timeout: float = 5.0,
) -> Observation:
    """W3: one synchronous node blocks (on a threading event) until every other state is done.

    A runtime that runs the sync node on the event loop freezes everything; the node then gives
    up after ``block_timeout`` real seconds and the rule fails.
    """
    blocker = NodeShape("BlockingSyncNode", ("token",), ("result",), sync=True)
    quick = NodeShape("QuickNode", ("token",), ("result",))
    cases = (
        Case("s000", blocker.name, Behaviour("gate")),
        *(Case(f"q{i:03d}", quick.name, Behaviour("one")) for i in range(others)),
    )
    scenario = Scenario(
        (blocker, quick),
        cases,
        batch_size=batch_size,
        workers=workers,
        sync_gate_timeout=block_timeout,
    )

    async def others_then_release(obs: Observation) -> None:
        clock = obs.log.clock
        quick_ids = {c.case_id for c in cases[1:]}
        await obs.log.wait_for(
            lambda: (
                quick_ids <= _final_case_ids(obs)
                or bool(obs.probe and obs.probe.sync_gate_timed_out)
            ),
            virtual_deadline=clock.now() + scenario.virtual_horizon,
            real_timeout=block_timeout * 2,
        )
        await _release_then_finish(obs)

    obs = await run_scenario(target, state_manager, scenario, during=others_then_release)
    require_healthy_run(obs)
    assert obs.probe is not None
    if obs.probe.sync_gate_timed_out:
        fail(
            "concurrency",
            "W3",
            f"a blocking synchronous execute() stalled the other {others} states"
            f" (they were not all reported within {block_timeout} s while it blocked)",
            obs,
        )
    assert_max_concurrency(obs)
    return obs

"""Poll timing rules: when a runtime polls again, and that it stops (contract §8.5, §8.9 item 6).

Spacings are measured on the scenario clock between enqueue requests as the runtime sent them.
Tolerance: with a virtual clock (ManualClock) ``1 ms``; with a real clock ``-10 ms`` below and
``max(300 ms, 30% of poll_interval)`` above (scheduling and loopback latency on a busy machine).

- **T1** an idle poll (answered 200 with no states) is followed by the next poll
  ``poll_interval`` later, within the tolerance.
- **T2** a poll that filled its request (as many states as it asked for) is followed by the next
  poll without waiting: the runtime does not sleep ``poll_interval / 2`` or longer on its clock
  in between (observed through the clock it is given), and, when every execution is instant, a
  gap longer than the tolerance is only allowed while the runtime is busy (an execution or a
  report in progress, i.e. it is waiting for a free worker).
- **T3** after consecutive poll errors the spacing grows (the mean of the last third of the
  spacings exceeds that of the first third, and the last exceeds the first) and never exceeds the
  runtime's declared cap (plus tolerance); after the errors stop, idle spacing is back to
  ``poll_interval``.
- **T4** shutdown stops polling at once: no enqueue request is sent after ``stop()`` is called.
"""

from __future__ import annotations

import itertools

from conformance._faults import FaultKind, FaultPlan
from conformance._harness import Observation, Scenario, run_scenario, run_until_polls
from conformance._nodes import Behaviour, Case, NodeShape
from conformance._recording import Exchange
from conformance._rules import fail, require_healthy_run
from conformance._targets import RuntimeTarget, StateManagerFactory

__all__ = [
    "assert_poll_timing",
    "check_error_backoff",
    "check_idle_poll_spacing",
    "check_shutdown_stops_polling",
    "tolerance",
]


def tolerance(obs: Observation) -> tuple[float, float]:
    """(below, above) tolerance in seconds for this observation's clock."""
    if obs.exact_time:
        return 0.001, 0.001
    return 0.010, max(0.3, 0.3 * obs.settings.poll_interval)


def _gaps(obs: Observation) -> list[tuple[Exchange, Exchange]]:
    stop = obs.log.marks.get("stop")
    polls = [x for x in obs.log.layer("runtime", "enqueue") if stop is None or x.sent_seq < stop]
    return list(itertools.pairwise(polls))


def assert_poll_timing(obs: Observation, *, instant: bool | None = None) -> None:
    """T1 always; T2 when every execution is instant (default: judged from the scenario)."""
    require_healthy_run(obs)
    if instant is None:
        instant = all(c.behaviour.instant for c in obs.scenario.cases) and not obs.fault_actions
    below, above = tolerance(obs)
    interval = obs.settings.poll_interval
    for earlier, later in _gaps(obs):
        if not earlier.ok or earlier.done_at is None:
            continue
        got = len(earlier.claimed())
        asked = earlier.request.get("batch_size") if isinstance(earlier.request, dict) else None
        gap = later.sent_at - earlier.done_at
        if got == 0:
            lower = later.sent_at - earlier.sent_at
            if lower < interval - below or gap > interval + above:
                fail(
                    "timing",
                    "T1",
                    f"an idle poll was followed by the next after {gap:.4f} s,"
                    f" expected poll_interval={interval} s (tolerance -{below}/+{above} s)",
                    obs,
                )
        elif isinstance(asked, int) and got >= asked:
            _assert_no_wait_after_full_poll(obs, earlier, later, instant=instant)


def _assert_no_wait_after_full_poll(
    obs: Observation, earlier: Exchange, later: Exchange, *, instant: bool
) -> None:
    interval = obs.settings.poll_interval
    done = earlier.done_seq or 0
    slept = [
        s.seconds
        for s in obs.log.sleeps
        if done < s.start_seq < later.sent_seq and s.seconds >= interval / 2
    ]
    if slept:
        fail(
            "timing",
            "T2",
            f"after a poll that filled its request the runtime slept {slept[0]} s"
            f" (poll_interval={interval} s) before polling again; expected at once",
            obs,
        )
    _, above = tolerance(obs)
    gap = later.sent_at - (earlier.done_at or later.sent_at)
    if not instant or gap <= above:
        return
    busy = any(
        e.start_seq < later.sent_seq and (e.end_seq is None or e.end_seq > done)
        for e in obs.log.executions
    ) or any(
        x.kind not in ("enqueue", "register")
        and x.sent_seq < later.sent_seq
        and (x.done_seq is None or x.done_seq > done)
        for x in obs.log.layer("runtime")
    )
    if not busy:
        fail(
            "timing",
            "T2",
            f"a poll that filled its request was followed by the next only after {gap:.4f} s"
            f" with nothing running in between; expected at once (tolerance {above} s)",
            obs,
        )


async def check_idle_poll_spacing(
    target: RuntimeTarget,
    state_manager: StateManagerFactory,
    *,
    poll_interval: float,
    polls: int = 5,
) -> Observation:
    """T1 (and T4) with no work at all: ``polls`` idle polls, exactly one interval apart."""
    scenario = Scenario((), (), poll_interval=poll_interval)
    obs = await run_until_polls(target, state_manager, scenario, polls)
    require_healthy_run(obs)
    if len(obs.log.layer("runtime", "enqueue")) < polls:
        fail("timing", "T1", f"fewer than {polls} polls were sent while idle", obs)
    assert_poll_timing(obs)
    assert_shutdown_stopped_polling(obs)
    return obs


async def check_error_backoff(
    target: RuntimeTarget,
    state_manager: StateManagerFactory,
    *,
    errors: int = 9,
    poll_interval: float = 1.0,
    kind: FaultKind = FaultKind.STATUS_503,
) -> Observation:
    """T3: the first ``errors`` polls fail with ``kind``; then the server answers again."""
    plan = FaultPlan(script={"enqueue": [kind] * errors})
    horizon = errors * (target.max_error_backoff + poll_interval) + 10 * poll_interval
    scenario = Scenario((), (), poll_interval=poll_interval, faults=plan, horizon=horizon)
    obs = await run_until_polls(target, state_manager, scenario, errors + 3)
    require_healthy_run(obs)
    polls = obs.log.layer("runtime", "enqueue")
    if len(polls) < errors + 3:
        fail("timing", "T3", f"polling stopped after {len(polls)} polls during errors", obs)
    starts = [p.sent_at for p in polls]
    spacing = [b - a for a, b in itertools.pairwise(starts[: errors + 1])]
    _below, above = tolerance(obs)
    third = max(1, len(spacing) // 3)
    first, last = spacing[:third], spacing[-third:]
    if not (sum(last) / len(last) > sum(first) / len(first) and spacing[-1] > spacing[0]):
        gaps = ", ".join(f"{g:.3f}" for g in spacing)
        fail("timing", "T3", f"spacing after consecutive poll errors does not grow: {gaps}", obs)
    cap = target.max_error_backoff
    if max(spacing) > cap + above:
        fail(
            "timing",
            "T3",
            f"spacing after poll errors reached {max(spacing):.3f} s, above the cap {cap} s",
            obs,
        )
    assert_poll_timing(obs)
    return obs


def assert_shutdown_stopped_polling(obs: Observation) -> None:
    """T4 on any observation that called stop()."""
    stop = obs.log.marks.get("stop")
    if stop is None:
        return
    late = [x for x in obs.log.layer("runtime", "enqueue") if x.sent_seq > stop]
    if late:
        fail("timing", "T4", f"{len(late)} enqueue request(s) were sent after stop()", obs)


async def check_shutdown_stops_polling(
    target: RuntimeTarget,
    state_manager: StateManagerFactory,
    *,
    poll_interval: float = 1.0,
    states: int = 3,
) -> Observation:
    """T4 mid-work: stop() after the first state is reported; no enqueue may follow."""
    shape = NodeShape("ShutdownNode", ("token",), ("result",))
    cases = tuple(Case(f"t{i:03d}", shape.name, Behaviour("one")) for i in range(states))
    scenario = Scenario((shape,), cases, poll_interval=poll_interval, batch_size=2, workers=1)
    obs = await run_scenario(
        target,
        state_manager,
        scenario,
        until=lambda o: any(x.kind == "executed" for x in o.log.layer("runtime")),
    )
    require_healthy_run(obs)
    assert_shutdown_stopped_polling(obs)
    return obs

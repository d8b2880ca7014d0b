"""Run one scenario: seed the state manager, run the runtime, observe, stop.

Seeding goes through the public API with the harness's own client (not recorded on the runtime
layer): register the node classes (contract §2.1, so that graph verification finds them, §4.4),
upsert one single-node graph per node class with ``max_retries: 0`` (§5; an errored state then
ends ERRORED instead of spawning retries), wait for VALID, and trigger one run per case (§2.6)
with the case id in every input. Only then does the runtime start, so its first poll sees all the
work. The runtime gets a transport stack ``runtime recorder -> faults -> server recorder -> base``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from conformance._faults import FaultAction, FaultPlan, FaultTransport
from conformance._nodes import Case, NodeShape, Probe, build_nodes, secret_value
from conformance._outcomes import all_cases_final
from conformance._recording import EventLog, RecordingClock, RecordingTransport
from conformance._seeding import graph_body, registration_body, trigger_body, unexpected
from conformance._targets import (
    RuntimeSettings,
    RuntimeTarget,
    StateManagerFactory,
    StateManagerHandle,
)

__all__ = [
    "Observation",
    "Scenario",
    "run_scenario",
    "run_until_polls",
    "runtime_settings",
]


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs besides the two targets."""

    shapes: tuple[NodeShape, ...]
    cases: tuple[Case, ...]
    batch_size: int = 4
    workers: int = 2
    poll_interval: float = 1.0
    faults: FaultPlan = field(default_factory=FaultPlan)
    horizon: float | None = None
    real_timeout: float = 30.0
    sync_gate_timeout: float = 5.0

    def shape(self, name: str) -> NodeShape:
        return next(s for s in self.shapes if s.name == name)

    @property
    def virtual_horizon(self) -> float:
        """How long (scenario clock) the harness waits for the runtime before giving up."""
        if self.horizon is not None:
            return self.horizon
        waits = sum(c.behaviour.seconds + c.behaviour.delay_ms / 1000 for c in self.cases)
        rounds = math.ceil(max(1, len(self.cases)) / self.batch_size) + 4
        return 60.0 + waits + 4 * rounds * self.poll_interval

    @property
    def settle_polls(self) -> int:
        """Polls after the deadline before giving up: enough to outlast any pending delay."""
        longest = max(
            (max(c.behaviour.seconds, c.behaviour.delay_ms / 1000) for c in self.cases),
            default=0.0,
        )
        return 2 + math.ceil(longest / self.poll_interval)


def runtime_settings(
    scenario: Scenario,
    sm: StateManagerHandle,
    namespace: str,
    transport: httpx.AsyncBaseTransport,
    log: EventLog,
) -> RuntimeSettings:
    """What the runtime under test is built with: the scenario's knobs, ``sm``'s address, and
    ``sm``'s clock wrapped so that every sleep it makes is in ``log`` (rule T2 reads them)."""
    return RuntimeSettings(
        namespace=namespace,
        name="conformance-runtime",
        batch_size=scenario.batch_size,
        workers=scenario.workers,
        poll_interval=scenario.poll_interval,
        state_manager_uri=sm.uri,
        key=sm.key,
        transport=transport,
        clock=RecordingClock(sm.clock, log),
    )


@dataclass
class Observation:
    """What a run recorded, handed to the rule evaluations."""

    scenario: Scenario
    target: RuntimeTarget
    settings: RuntimeSettings
    log: EventLog
    nodes: list[type[Any]]
    fault_actions: list[FaultAction]
    server_requests: list[Any] | None
    exact_time: bool
    runtime_error: BaseException | None = None
    stopped_cleanly: bool = True
    reached: bool = True
    probe: Probe | None = None


Step = Callable[[Observation], Awaitable[None]]


async def _seed(sm: StateManagerHandle, scenario: Scenario, namespace: str) -> None:
    async with httpx.AsyncClient(
        base_url=sm.uri,
        transport=sm.transport or httpx.AsyncHTTPTransport(),
        headers={"x-api-key": sm.key},
        timeout=30.0,
    ) as client:
        base = f"/v0/namespace/{namespace}"
        used = {c.node for c in scenario.cases}
        shapes = [s for s in scenario.shapes if s.name in used]
        if not shapes:
            return
        reply = await client.put(f"{base}/nodes/", json=registration_body("seed", shapes))
        _expect(reply, 200, "register the scenario's nodes")
        for s in shapes:
            secrets = {name: secret_value(name) for name in s.secrets}
            graph = graph_body(namespace, s, secrets=secrets, retry_policy={"max_retries": 0})
            reply = await client.put(f"{base}/graph/g-{s.name}", json=graph)
            _expect(reply, 201, f"upsert graph g-{s.name}")
            for _ in range(600):
                reply = await client.get(f"{base}/graph/g-{s.name}")
                _expect(reply, 200, f"read graph g-{s.name}")
                if reply.json().get("validation_status") != "PENDING":
                    break
                await sm.clock.sleep(0.05)
            status = reply.json().get("validation_status")
            if status != "VALID":
                errors = reply.json().get("validation_errors")
                raise AssertionError(f"harness: graph g-{s.name} is {status}: {errors}")
        for case in scenario.cases:
            inputs = {f: case.case_id for f in scenario.shape(case.node).inputs}
            reply = await client.post(
                f"{base}/graph/g-{case.node}/trigger",
                json=trigger_body(inputs),
            )
            _expect(reply, 200, f"trigger case {case.case_id}")


def _expect(reply: httpx.Response, status: int, what: str) -> None:
    problem = unexpected(reply, status)
    if problem is not None:
        raise AssertionError(f"harness: could not {what}: {problem}")


async def run_scenario(
    target: RuntimeTarget,
    state_manager: StateManagerFactory,
    scenario: Scenario,
    *,
    until: Callable[[Observation], bool] | None = None,
    during: Step | None = None,
) -> Observation:
    """Run ``scenario``; stop the runtime once ``until`` holds (default: every case final).

    ``during`` (if given) runs after the runtime started and replaces the default wait; the
    runtime is stopped when it returns. Returns the observation; never raises for a rule
    violation (evaluations do that), only ``AssertionError`` for harness failures.
    """
    async with state_manager() as sm:
        log = EventLog(sm.clock)
        log.bind_loop()
        namespace = f"conformance-{uuid.uuid4().hex[:12]}"
        await _seed(sm, scenario, namespace)
        probe = Probe(log, {c.case_id: c for c in scenario.cases}, target)
        probe.sync_gate_timeout = scenario.sync_gate_timeout
        probe.async_gate()
        nodes = build_nodes(scenario.shapes, probe)
        base = sm.transport or httpx.AsyncHTTPTransport()
        inner: httpx.AsyncBaseTransport = RecordingTransport(base, log, "server")
        faults = FaultTransport(inner, scenario.faults, log) if scenario.faults.active else None
        transport = RecordingTransport(faults or inner, log, "runtime")
        settings = runtime_settings(scenario, sm, namespace, transport, log)
        obs = Observation(
            scenario,
            target,
            settings,
            log,
            nodes,
            faults.actions if faults else [],
            None,
            sm.exact_time,
            probe=probe,
        )
        handle = target.make(nodes, settings)
        finished = anyio.Event()

        async def run_runtime() -> None:
            try:
                await handle.run()
            except Exception as exc:  # noqa: BLE001 - reported by the evaluations (rule L1)
                obs.runtime_error = exc
            finally:
                finished.set()

        deadline = sm.clock.now() + scenario.virtual_horizon
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_runtime)
            if during is not None:
                await during(obs)
            else:
                condition = until or (lambda o: all_cases_final(o))
                obs.reached = (
                    await log.wait_for(
                        lambda: condition(obs) or finished.is_set(),
                        virtual_deadline=deadline,
                        real_timeout=scenario.real_timeout,
                        settle_polls=scenario.settle_polls,
                    )
                    and not finished.is_set()
                )
            probe.open_gates()
            log.mark("stop")
            handle.stop()
            with anyio.move_on_after(scenario.real_timeout):
                await finished.wait()
            if not finished.is_set():
                obs.stopped_cleanly = False
                tg.cancel_scope.cancel()
        server_log = sm.requests
        if sm.transport is None:
            # Runtimes may borrow the transport without closing it; this one is ours.
            await base.aclose()
    # Read the server's log only once it has shut down: a served fake appends from its own
    # thread, possibly just after the client already has the response.
    if server_log is not None:
        obs.server_requests = list(server_log())
    return obs


async def run_until_polls(
    target: RuntimeTarget, state_manager: StateManagerFactory, scenario: Scenario, polls: int
) -> Observation:
    """Run ``scenario`` until the runtime has sent ``polls`` polls (or gave up), then stop it.

    For the checks that judge polling itself rather than the work: the caller decides what
    fewer polls than asked for means.
    """
    return await run_scenario(
        target,
        state_manager,
        scenario,
        until=lambda o: len(o.log.layer("runtime", "enqueue")) >= polls,
    )

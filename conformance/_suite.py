"""One scenario, every rule that applies to it."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from conformance._batching import assert_batching
from conformance._concurrency import assert_max_concurrency
from conformance._errors import assert_outcomes
from conformance._harness import Observation, Scenario, run_scenario
from conformance._registration import assert_registration
from conformance._rules import fail
from conformance._targets import RuntimeTarget, StateManagerFactory
from conformance._timing import assert_poll_timing, assert_shutdown_stopped_polling

__all__ = ["assert_server_log_agrees", "check_scenario"]


async def check_scenario(
    target: RuntimeTarget, state_manager: StateManagerFactory, scenario: Scenario
) -> Observation:
    """Run ``scenario`` to completion and check registration, batching, concurrency, error
    reporting and poll timing (T1 always, T2 when every execution is instant and no fault is
    injected, T4 at the stop), and O1 where the state manager keeps a request log."""
    obs = await run_scenario(target, state_manager, scenario)
    assert_registration(obs)
    assert_batching(obs)
    assert_max_concurrency(obs)
    assert_outcomes(obs)
    if not obs.fault_actions:
        assert_poll_timing(obs)
    assert_shutdown_stopped_polling(obs)
    if obs.server_requests is not None:
        assert_server_log_agrees(obs)
    return obs


def assert_server_log_agrees(obs: Observation) -> None:
    """Rule O1 (observation): the state manager's own request log (the fake's ``sm.requests``)
    contains every exchange the server-side recorder saw, with the same method, path, body and
    status, so the rules above judge what the server really received. (Concurrent requests may
    reach the server in another order than they were sent, so order is not compared.)

    Raises:
        AssertionError: naming O1; or ``LookupError`` when the target keeps no request log.
    """
    if obs.server_requests is None:
        raise LookupError("this state manager keeps no request log")
    logged = Counter(
        _key(r.method, r.path, r.body, r.status)
        for r in obs.server_requests
        if r.path.startswith(f"/v0/namespace/{obs.settings.namespace}/")
    )
    for exchange in obs.log.layer("server"):
        if exchange.status is None:
            continue
        key = _key(exchange.method, exchange.path, exchange.request, exchange.status)
        if logged[key] <= 0:
            fail(
                "observation",
                "O1",
                f"the server's log lacks {exchange.method} {exchange.path} ->"
                f" {exchange.status} that the recorder saw",
                obs,
            )
        logged[key] -= 1


def _key(method: str, path: str, body: Any, status: int) -> tuple[str, str, str, int]:
    return method, path.rstrip("/"), json.dumps(body, sort_keys=True), status

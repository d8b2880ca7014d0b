"""Registration rules (contract §2.1, §8.2, §8.3).

- **R1** before its first poll the runtime registers, with one successful
  ``PUT /v0/namespace/{namespace}/nodes/`` whose ``runtime_name`` is its name and whose nodes are
  exactly its node classes, in order: ``name`` = class name, ``inputs_schema`` /
  ``outputs_schema`` = ``Inputs.model_json_schema()`` / ``Outputs.model_json_schema()``,
  ``secrets`` = the ``Secrets`` field names (a ``runtime_namespace`` or ``namespace``, if sent,
  equals the namespace).
- **R2** every poll names exactly the registered node classes.
- **R3** invalid node classes are refused before any request is sent, with one error that lists
  every problem (each offending class, and each offending field, is named in the message).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import anyio
import httpx

from conformance._harness import Observation, Scenario, run_until_polls, runtime_settings
from conformance._nodes import NodeShape, Probe, build_invalid_node, build_nodes
from conformance._recording import EventLog, RecordingTransport
from conformance._rules import fail, require_healthy_run
from conformance._targets import (
    RuntimeHandle,
    RuntimeTarget,
    StateManagerFactory,
)

__all__ = ["assert_registration", "check_invalid_nodes_refused", "check_registration"]


def _expected_node(node: type[Any]) -> dict[str, Any]:
    return {
        "name": node.__name__,
        "inputs_schema": node.Inputs.model_json_schema(),
        "outputs_schema": node.Outputs.model_json_schema(),
        "secrets": list(node.Secrets.model_fields),
    }


def assert_registration(obs: Observation) -> None:
    """R1 and R2 on any observation."""
    exchanges = obs.log.layer("runtime")
    first_poll = next((x.sent_seq for x in exchanges if x.kind == "enqueue"), None)
    before = [x for x in obs.log.layer("server") if first_poll is None or x.sent_seq < first_poll]
    registrations = [x for x in before if x.kind == "register" and x.ok]
    namespace = obs.settings.namespace
    if not registrations:
        fail("registration", "R1", "no successful PUT .../nodes/ before the first poll", obs)
    registration = registrations[-1]
    expected_path = f"/v0/namespace/{namespace}/nodes/"
    if registration.path.rstrip("/") != expected_path.rstrip("/"):
        fail("registration", "R1", f"registered at {registration.path}, not {expected_path}", obs)
    body = registration.request if isinstance(registration.request, dict) else {}
    if body.get("runtime_name") != obs.settings.name:
        fail(
            "registration",
            "R1",
            f"runtime_name {body.get('runtime_name')!r} != {obs.settings.name!r}",
            obs,
        )
    if body.get("runtime_namespace", namespace) != namespace:
        fail("registration", "R1", "runtime_namespace differs from the namespace", obs)
    sent = body.get("nodes")
    if not isinstance(sent, list) or len(sent) != len(obs.nodes):
        fail(
            "registration",
            "R1",
            f"registered {len(sent) if isinstance(sent, list) else sent!r} nodes,"
            f" expected {len(obs.nodes)}",
            obs,
        )
    for got, node in zip(sent, obs.nodes, strict=True):
        want = _expected_node(node)
        if not isinstance(got, dict):
            fail("registration", "R1", f"node entry {got!r} is not an object", obs)
        if got.get("namespace", namespace) != namespace:
            fail("registration", "R1", f"node {node.__name__} sent another namespace", obs)
        for key, value in want.items():
            if got.get(key) != value:
                fail(
                    "registration",
                    "R1",
                    f"node {node.__name__}: {key} is {got.get(key)!r}, expected {value!r}",
                    obs,
                )
    names = sorted(n.__name__ for n in obs.nodes)
    for poll in obs.log.layer("runtime", "enqueue"):
        asked = poll.request.get("nodes") if isinstance(poll.request, dict) else None
        if not isinstance(asked, list) or sorted(asked) != names:
            fail("registration", "R2", f"a poll named nodes {asked!r}, expected {names}", obs)


async def check_registration(
    target: RuntimeTarget, state_manager: StateManagerFactory, shapes: Sequence[NodeShape]
) -> Observation:
    """R1 and R2 for ``shapes``: run until the second poll, then stop."""
    obs = await run_until_polls(target, state_manager, Scenario(tuple(shapes), ()), 2)
    require_healthy_run(obs)
    assert_registration(obs)
    return obs


async def check_invalid_nodes_refused(
    target: RuntimeTarget,
    state_manager: StateManagerFactory,
    valid: Sequence[NodeShape],
    problems: Sequence[tuple[str, str, str]],
) -> str:
    """R3: ``valid`` shapes plus invalid classes ``(name, problem, field)`` must be refused.

    ``problem`` is as :func:`conformance._nodes.build_invalid_node`; for ``duplicate`` the name
    should be one of the valid shapes' names. Returns the error message.
    """
    async with state_manager() as sm:
        log = EventLog(sm.clock)
        log.bind_loop()
        probe = Probe(log, {}, target)
        nodes = build_nodes(valid, probe)
        nodes += [build_invalid_node(target, n, p, f) for n, p, f in problems]
        base = sm.transport or httpx.AsyncHTTPTransport()
        transport = RecordingTransport(base, log, "runtime")
        namespace = f"conformance-{uuid.uuid4().hex[:12]}"
        scenario = Scenario(tuple(valid), ())
        settings = runtime_settings(scenario, sm, namespace, transport, log)
        error: Exception | None = None
        try:
            handle = target.make(nodes, settings)
            await _run_until_first_request(handle, log)
        except Exception as exc:  # noqa: BLE001 - any refusal counts; its text is checked
            error = exc
        finally:
            if sm.transport is None:
                await base.aclose()
        if log.exchanges:
            fail(
                "registration",
                "R3",
                f"{len(log.exchanges)} request(s) were sent with invalid node classes"
                f" ({log.exchanges[0].method} {log.exchanges[0].path} first)",
            )
        if error is None:
            fail("registration", "R3", f"invalid node classes were accepted: {problems}")
        message = str(error)
        for name, problem, field_name in problems:
            wanted = [name, field_name] if problem == "field_not_str" else [name]
            missing = [w for w in wanted if w not in message]
            if missing:
                fail(
                    "registration",
                    "R3",
                    f"the error does not list the problem {problem} of {name}"
                    f" (missing {missing}): {message!r}",
                )
        return message


async def _run_until_first_request(handle: RuntimeHandle, log: EventLog) -> None:
    """Run a runtime that accepted its nodes until it sends something (or fails), then stop."""
    failure: list[Exception] = []
    done = anyio.Event()

    async def run() -> None:
        try:
            await handle.run()
        except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group
            failure.append(exc)
        finally:
            done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await log.wait_for(
            lambda: bool(log.exchanges) or done.is_set(),
            virtual_deadline=log.clock.now() + 60.0,
            real_timeout=5.0,
            settle_polls=0,
        )
        handle.stop()
        with anyio.move_on_after(5.0):
            await done.wait()
        tg.cancel_scope.cancel()
    if failure:
        raise failure[0]

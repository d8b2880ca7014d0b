"""exo_ref._runtime: end to end against the in-process fake, lifecycle, threads and signals."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import threading
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel

from exo_ref import (
    AuthenticationError,
    BaseNode,
    ManualClock,
    RegistrationError,
    RuntimeAlreadyRunningError,
    event_loop_options,
)
from exo_ref._config import MAX_BATCH_SIZE
from fake_state_manager import FakeStateManager
from tests.builders import NAMESPACE, graph_node

from .helpers import (
    KEY,
    Fan,
    Recorder,
    json_response,
    recorded_runtime,
    run_clock,
    runtime_for,
    start_graph,
    state,
)


class SyncLeaf(BaseNode):
    class Inputs(BaseModel):
        i: str

    class Outputs(BaseModel):
        done: str

    def execute(self) -> BaseModel:  # a plain def: runs in a worker thread
        return self.Outputs(done=self.inputs.i)


FAN_GRAPH = [
    graph_node("fan", "Fan", {"n": "10"}, ["leaf"]),
    graph_node("leaf", "SyncLeaf", {"i": "${{ fan.outputs.i }}"}),
]


async def test_fan_out_graph_runs_to_success_within_batch_bounds() -> None:
    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        rt = runtime_for(sm, [Fan, SyncLeaf], batch_size=4, workers=3)
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            assert rt.is_running
            run_id = await start_graph(sm, FAN_GRAPH)
            summary = await sm.wait_for_run(run_id)
            rt.stop()
        assert not rt.is_running
    assert summary["status"] == "SUCCESS"
    assert (summary["success_count"], summary["total_count"]) == (20, 20)
    register = sm.requests[0]
    assert (register.method, register.path) == ("PUT", f"/v0/namespace/{NAMESPACE}/nodes/")
    assert register.body["runtime_namespace"] == NAMESPACE
    assert [n["namespace"] for n in register.body["nodes"]] == [NAMESPACE, NAMESPACE]
    polls = [r.body["batch_size"] for r in sm.requests if r.path.endswith("/states/enqueue")]
    assert polls
    assert all(1 <= size <= 4 for size in polls)


async def test_the_largest_batch_size_never_asks_for_more_than_a_poll_may_claim() -> None:
    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        rt = runtime_for(sm, [Fan, SyncLeaf], batch_size=MAX_BATCH_SIZE, workers=3)
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            summary = await sm.wait_for_run(await start_graph(sm, FAN_GRAPH))
            rt.stop()
    assert summary["status"] == "SUCCESS"
    polls = [r for r in sm.requests if r.path.endswith("/states/enqueue")]
    assert polls
    assert all(1 <= r.body["batch_size"] <= MAX_BATCH_SIZE for r in polls)


async def test_run_refuses_to_run_twice_concurrently() -> None:
    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        rt = runtime_for(sm, [Fan])
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            with pytest.raises(RuntimeAlreadyRunningError, match="already running"):
                await rt.run()
            rt.stop()
        # ...but it can run again once stopped (nothing backend-specific kept).
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            rt.stop()


async def test_stop_before_start_makes_the_next_run_return_at_once() -> None:
    recorder = Recorder()
    rt = recorded_runtime(recorder, clock=ManualClock())
    rt.stop()
    rt.stop()
    await rt.run()
    assert recorder.calls == []
    assert not rt.is_running


async def test_stop_twice_while_running_is_harmless() -> None:
    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        rt = runtime_for(sm, [Fan])
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            rt.stop()
            rt.stop()
    assert not rt.is_running


async def test_registration_retries_5xx_then_fails_on_401_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG", logger="exo_ref")
    clock = ManualClock()
    recorder = Recorder(
        script={
            "/nodes/": [
                json_response(503, {"detail": "starting"}),
                httpx.ConnectError("refused"),
                json_response(401, {"detail": "Invalid API key"}),
            ]
        }
    )
    rt = recorded_runtime(recorder, clock=clock)
    async with anyio.create_task_group() as tg:
        await run_clock(clock, tg)
        with pytest.raises(AuthenticationError) as info:
            await rt.run()
        tg.cancel_scope.cancel()
    assert KEY not in str(info.value)
    assert "EXOSPHERE_API_KEY" in str(info.value)
    assert len(recorder.calls) == 3
    assert "retrying" in caplog.text
    assert KEY not in caplog.text
    assert not rt.is_running


async def test_registration_fails_at_once_on_other_4xx() -> None:
    recorder = Recorder(script={"/nodes/": [json_response(422, {"detail": "nodes missing"})]})
    rt = recorded_runtime(recorder, clock=ManualClock())
    with pytest.raises(RegistrationError, match="422: nodes missing"):
        await rt.run()


async def test_stop_during_registration_retries_returns() -> None:
    clock = ManualClock()
    recorder = Recorder(script={"/nodes/": [httpx.ConnectError("refused")] * 100})
    rt = recorded_runtime(recorder, clock=clock)
    async with anyio.create_task_group() as tg:
        await run_clock(clock, tg)
        tg.start_soon(rt.run)
        while len(recorder.calls) < 3:
            await clock.sleep(0.1)
        rt.stop()
        while rt.is_running:
            await clock.sleep(0.1)
        tg.cancel_scope.cancel()
    assert not [c for c in recorder.calls if c.path.endswith("/enqueue")]


class ThreadRecorder(Recorder):
    """Signals (thread-safely) when the runtime has registered and polled."""

    def __init__(self) -> None:
        super().__init__()
        self.polled = threading.Event()

    def default(self, call: Any) -> httpx.Response:
        if call.path.endswith("/states/enqueue"):
            self.polled.set()
        return super().default(call)


class LoopRecorder(ThreadRecorder):
    """Also records the class of the event loop each request is sent from (asyncio only)."""

    def __init__(self) -> None:
        super().__init__()
        self.loops: set[str] = set()

    def default(self, call: Any) -> httpx.Response:
        loop = asyncio.get_running_loop()
        self.loops.add(f"{type(loop).__module__}.{type(loop).__qualname__}")
        return super().default(call)


def _start_in_a_thread_and_stop(recorder: ThreadRecorder, **start: Any) -> None:
    """``start(**start)`` in a background thread; ``stop()`` from this one once it has polled."""
    rt = recorded_runtime(recorder, poll_interval=0.01)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            rt.start(**start)
        except BaseException as exc:  # noqa: BLE001 - asserted empty below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert recorder.polled.wait(10)
    assert rt.is_running
    rt.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert errors == []
    assert not rt.is_running


def test_start_in_a_background_thread_and_stop_from_another() -> None:
    _start_in_a_thread_and_stop(ThreadRecorder())


def test_start_with_trio_backend_in_a_thread() -> None:
    _start_in_a_thread_and_stop(ThreadRecorder(), backend="trio")


def _loops_under_start(**start: Any) -> set[str]:
    recorder = LoopRecorder()
    _start_in_a_thread_and_stop(recorder, **start)
    return recorder.loops


def test_start_runs_on_uvloop_when_it_is_installed() -> None:
    # uvloop is a dependency on this platform (pyproject.toml), so the test env has it.
    assert event_loop_options() == {"use_uvloop": True}
    assert _loops_under_start() == {"uvloop.Loop"}


def test_start_with_backend_options_keeps_the_loop_they_ask_for() -> None:
    loops = _loops_under_start(backend_options={})
    assert len(loops) == 1
    assert not loops.pop().startswith("uvloop"), "backend_options={} must not choose uvloop"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_os_signal_under_start_in_the_main_thread_stops_gracefully(signum: int) -> None:
    assert threading.current_thread() is threading.main_thread()

    class SignalOnPoll(Recorder):
        """Hands out one state and raises the signal during the first poll."""

        def default(self, call: Any) -> httpx.Response:
            if call.path.endswith("/states/enqueue") and not self.paths("/states/enqueue")[1:]:
                os.kill(os.getpid(), signum)
            return super().default(call)

    recorder = SignalOnPoll(states=[state("s1", "Fan", n="2")])
    rt = recorded_runtime(recorder, poll_interval=0.01)
    try:
        rt.start()
    except KeyboardInterrupt:  # pragma: no cover - the behaviour under test failed
        pytest.fail("SIGINT was not turned into a graceful shutdown")
    assert not rt.is_running
    # The state claimed by the poll in flight was either finished or handed back: one report.
    reports = [c.path.rsplit("/", 2)[-2:] for c in recorder.calls if "/state/" in c.path]
    assert reports in ([["s1", "executed"]], [["s1", "re-enqueue-after"]]), reports
    assert len(recorder.paths("/states/enqueue")) == 1  # no claiming after the signal


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_start_inside_a_running_asyncio_loop_returns_a_task() -> None:
    # A clock that never advances on its own: after its first poll the runtime waits for ever,
    # so "all tasks blocked" is reached (auto-advance would keep waking the poller).
    async with FakeStateManager(clock=ManualClock()) as sm:
        rt = runtime_for(sm, [Fan])
        task = rt.start()
        assert isinstance(task, asyncio.Task)
        await anyio.wait_all_tasks_blocked()
        assert rt.is_running
        assert [r.path.rsplit("/", 2)[-2:] for r in sm.requests] == [
            ["nodes", ""],
            ["states", "enqueue"],
        ]
        rt.stop()
        await task
    assert not rt.is_running


async def test_cancelling_a_running_runtime_leaves_it_reusable() -> None:
    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        rt = runtime_for(sm, [Fan])
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            tg.cancel_scope.cancel()  # upstream's only way to stop (contract §8.4)
        assert not rt.is_running
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            assert rt.is_running
            rt.stop()
    assert not rt.is_running


class Restartable(httpx.AsyncBaseTransport):
    """Routes to one fake, then refuses connections (down), then routes to a fresh fake."""

    def __init__(self, target: httpx.AsyncBaseTransport) -> None:
        self.target: httpx.AsyncBaseTransport | None = target
        self.refused = anyio.Event()
        self.registrations: list[httpx.AsyncBaseTransport] = []
        self.registered = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = self.target
        if target is None:
            self.refused.set()
            raise httpx.ConnectError("connection refused", request=request)
        response = await target.handle_async_request(request)
        if request.method == "PUT" and request.url.path.endswith("/nodes/"):
            self.registrations.append(target)
            self.registered.set()
        return response


async def test_a_runtime_registers_again_after_the_server_restarts_empty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 10: a restarted in-memory server forgot the nodes; the runtime must notice the
    # outage, register again by itself, and a graph upserted afterwards is VALID and runs.
    clock = ManualClock(auto_advance=True)
    async with FakeStateManager(clock=clock) as before, FakeStateManager(clock=clock) as after:
        network = Restartable(before.transport)
        rt = runtime_for(before, [Fan, SyncLeaf], transport=network, workers=3)
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            first = await before.wait_for_run(await start_graph(before, FAN_GRAPH))
            network.target = None  # the server goes down ...
            await network.refused.wait()  # ... and the runtime has noticed (a poll failed)
            network.registered = anyio.Event()
            network.target = after.transport  # ... and comes back with nothing
            await network.registered.wait()
            second = await after.wait_for_run(await start_graph(after, FAN_GRAPH))
            rt.stop()
    assert (first["status"], second["status"]) == ("SUCCESS", "SUCCESS")
    assert network.registrations == [before.transport, after.transport]
    assert any(
        "Registering the nodes again: the state manager answers again after an outage"
        in record.getMessage()
        for record in caplog.records
    )


async def test_a_report_the_server_does_not_know_is_logged_once_and_registers_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(auto_advance=True)
    async with FakeStateManager(clock=clock) as before, FakeStateManager(clock=clock) as after:
        network = Restartable(before.transport)

        class Gate(BaseNode):
            class Inputs(BaseModel):
                i: str

            class Outputs(BaseModel):
                done: str

            async def execute(self) -> BaseModel:
                started.set()
                await release.wait()
                return self.Outputs(done=self.inputs.i)

        started, release = anyio.Event(), anyio.Event()
        rt = runtime_for(before, [Gate], transport=network, workers=1)
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            await start_graph(before, [graph_node("g", "Gate", {"i": "x"})])
            await started.wait()
            network.registered = anyio.Event()
            network.target = after.transport  # restarted between claim and report
            release.set()
            await network.registered.wait()
            rt.stop()
    reports = [r for r in after.requests if r.path.endswith("/executed")]
    assert [r.status for r in reports] == [404]  # not retried
    messages = [record.getMessage() for record in caplog.records]
    assert sum("does not know this state" in m for m in messages) == 1
    assert any("Registering the nodes again: POST /state/" in m for m in messages)


async def test_each_state_is_one_info_line_with_node_id_and_milliseconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        rt = runtime_for(sm, [Fan, SyncLeaf], workers=3)
        with caplog.at_level(logging.INFO, logger="exo_ref.workers"):
            async with anyio.create_task_group() as tg:
                await tg.start(rt.run)
                run_id = await start_graph(sm, FAN_GRAPH)
                await sm.wait_for_run(run_id)
                rt.stop()
        ids = {state["id"]: state["node_name"] for state in sm.states(run_id)}
    lines = [r.getMessage() for r in caplog.records if r.name == "exo_ref.workers"]
    # 11 executions: the fan and its 10 leaves (the fan's 9 extra outputs become EXECUTED
    # copies on the server, §3.4, and are never run).
    assert len(lines) == 11
    for line in lines:
        match = re.fullmatch(r"State (\w+) \(node (\w+)\) executed in \d+\.\d ms", line)
        assert match, line
        assert ids[match[1]] == match[2]

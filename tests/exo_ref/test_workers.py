"""exo_ref._workers: execution, concurrency and error reporting."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import timedelta
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from exo_ref import BaseNode, PruneSignal, ReQueueAfterSignal, StateManagerError
from exo_ref._poller import Backlog
from exo_ref._runtime_client import ReportOutcome
from exo_ref._wire import ClaimedState
from exo_ref._workers import WorkerPool

from .helpers import EchoNode

SECRET_VALUE = "s3cr3t-value-never-logged"


class FakeReports:
    """A ReportClient recording (kind, state_id, payload)."""

    def __init__(self, secrets: dict[str, str] | Exception | None = None) -> None:
        self.reports: list[tuple[str, str, Any]] = []
        self.secret_calls: list[str] = []
        self.secrets_answer = secrets if secrets is not None else {}
        self.fail_next = 0
        self.changed = anyio.Event()

    async def secrets(self, state_id: str) -> dict[str, str]:
        self.secret_calls.append(state_id)
        if isinstance(self.secrets_answer, Exception):
            raise self.secrets_answer
        return self.secrets_answer

    async def _record(self, kind: str, state_id: str, payload: Any) -> ReportOutcome:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("report machinery broke")
        self.reports.append((kind, state_id, payload))
        self.changed.set()
        self.changed = anyio.Event()
        return ReportOutcome.DELIVERED

    async def report_executed(self, state_id: str, outputs: list[dict[str, Any]]) -> ReportOutcome:
        return await self._record("executed", state_id, outputs)

    async def report_errored(self, state_id: str, error: str) -> ReportOutcome:
        return await self._record("errored", state_id, error)

    async def report_prune(self, state_id: str, data: dict[str, Any]) -> ReportOutcome:
        return await self._record("prune", state_id, data)

    async def report_re_enqueue_after(self, state_id: str, delay_ms: int) -> ReportOutcome:
        return await self._record("re-enqueue-after", state_id, delay_ms)


async def run_pool(
    nodes: list[type[BaseNode]],
    states: list[ClaimedState],
    client: FakeReports,
    workers: int = 2,
) -> WorkerPool:
    """Feed ``states`` to a pool and run it until all are handled."""
    backlog = Backlog(batch_size=max(1, len(states)), workers=workers)
    pool = WorkerPool(client=client, nodes=nodes, workers=workers, backlog=backlog,
                      runtime_label="'rt' (namespace 'ns')")
    send, receive = anyio.create_memory_object_stream[ClaimedState](math.inf)
    with send, receive:
        backlog.claimed(len(states))
        for item in states:
            send.send_nowait(item)
        send.close()
        await pool.run(receive)
    assert backlog.unstarted == 0
    return pool


def st(state_id: str, node: str = "EchoNode", **inputs: str) -> ClaimedState:
    return ClaimedState(state_id=state_id, node_name=node, inputs=inputs)


class Many(BaseNode):
    class Inputs(BaseModel):
        n: str

    class Outputs(BaseModel):
        i: str

    async def execute(self) -> list[Outputs] | None:
        n = int(self.inputs.n)
        return None if n == 0 else [self.Outputs(i=str(i)) for i in range(n)]


class Raises(BaseNode):
    class Inputs(BaseModel):
        kind: str

    async def execute(self) -> None:
        kinds: dict[str, BaseException] = {
            "value": ValueError("bad value 42"),
            "empty": KeyError(),
            "blank": RuntimeError(""),
            "prune": PruneSignal({"why": "done"}),
            "requeue": ReQueueAfterSignal(timedelta(seconds=2.5)),
            "tiny": ReQueueAfterSignal(timedelta(microseconds=300)),
        }
        raise kinds[self.inputs.kind]


class WrongOutputs(BaseNode):
    class Inputs(BaseModel):
        kind: str

    class Outputs(BaseModel):
        x: str

    async def execute(self) -> Any:
        return {
            "dict": {"x": "1"},
            "model": EchoNode.Outputs(text="t"),
            "list": [self.Outputs(x="1"), "nope"],
        }[self.inputs.kind]


class NeedsSecrets(BaseNode):
    class Inputs(BaseModel):
        pass

    class Outputs(BaseModel):
        ok: str

    class Secrets(BaseModel):
        api_key: str

    async def execute(self) -> BaseModel:
        return self.Outputs(ok=str(self.secrets.api_key == SECRET_VALUE))


async def test_outputs_are_reported_as_executed() -> None:
    client = FakeReports()
    await run_pool([EchoNode, Many], [st("a", text="hi"), st("b", "Many", n="3"),
                                      st("c", "Many", n="0")], client)
    assert sorted(client.reports) == [
        ("executed", "a", [{"text": "hi"}]),
        ("executed", "b", [{"i": "0"}, {"i": "1"}, {"i": "2"}]),
        ("executed", "c", []),
    ]


@pytest.mark.parametrize(
    ("kind", "report"),
    [
        pytest.param("value", ("errored", "bad value 42"), id="message"),
        pytest.param("empty", ("errored", "KeyError"), id="empty-message-type-name"),
        pytest.param("blank", ("errored", "RuntimeError"), id="blank-message-type-name"),
        pytest.param("prune", ("prune", {"why": "done"}), id="prune"),
        pytest.param("requeue", ("re-enqueue-after", 2500), id="requeue"),
        pytest.param("tiny", ("re-enqueue-after", 1), id="requeue-under-1ms"),
    ],
)
async def test_exceptions_and_signals_end_in_the_right_report(
    kind: str, report: tuple[str, Any]
) -> None:
    client = FakeReports()
    await run_pool([Raises], [st("s", "Raises", kind=kind)], client)
    assert client.reports == [(report[0], "s", report[1])]


@pytest.mark.parametrize(
    ("kind", "fragment"),
    [
        pytest.param("dict", "returned dict", id="dict"),
        pytest.param("model", "returned EchoNode.Outputs instance", id="other-model"),
        pytest.param("list", "a list containing str", id="bad-list-item"),
    ],
)
async def test_outputs_that_are_not_the_nodes_outputs_are_errored(kind: str, fragment: str) -> None:
    client = FakeReports()
    await run_pool([WrongOutputs], [st("s", "WrongOutputs", kind=kind)], client)
    ((what, _, message),) = client.reports
    assert what == "errored"
    assert fragment in message
    assert "execute() must return WrongOutputs.Outputs" in message


async def test_invalid_inputs_are_errored_with_the_reason() -> None:
    client = FakeReports()
    await run_pool([EchoNode], [st("s", wrong="x")], client)
    assert client.reports == [
        ("errored", "s", "Invalid inputs for node EchoNode: text: Field required")
    ]


async def test_unknown_node_name_is_errored() -> None:
    client = FakeReports()
    await run_pool([EchoNode], [st("s", "Ghost")], client)
    ((what, _, message),) = client.reports
    assert what == "errored"
    assert "Node 'Ghost' is not served by runtime 'rt' (namespace 'ns')" in message
    assert "['EchoNode']" in message


async def test_secrets_are_fetched_only_when_declared_and_never_leak() -> None:
    client = FakeReports(secrets={"api_key": SECRET_VALUE, "other": "x"})
    await run_pool([NeedsSecrets, EchoNode], [st("a", "NeedsSecrets"), st("b", text="t")], client)
    assert client.secret_calls == ["a"]
    assert ("executed", "a", [{"ok": "True"}]) in client.reports


async def test_missing_secrets_are_errored_without_values(caplog: pytest.LogCaptureFixture) -> None:
    client = FakeReports(secrets={"wrong_name": SECRET_VALUE})
    await run_pool([NeedsSecrets], [st("a", "NeedsSecrets")], client)
    ((what, _, message),) = client.reports
    assert (what, message) == ("errored", "Invalid secrets for node NeedsSecrets: "
                                          "api_key: Field required")
    assert SECRET_VALUE not in caplog.text


async def test_secrets_fetch_failure_is_errored() -> None:
    failure = StateManagerError("GET /state/a/secrets answered 500: internal", status_code=500,
                                detail="internal", method="GET", path="/state/a/secrets")
    client = FakeReports(secrets=failure)
    await run_pool([NeedsSecrets], [st("a", "NeedsSecrets")], client)
    ((what, _, message),) = client.reports
    assert what == "errored"
    assert message.startswith("Could not fetch secrets for node NeedsSecrets: GET /state/a/")


class Gauge(BaseNode):
    """Counts concurrent executions; each waits until released."""

    active = 0
    peak = 0
    release: anyio.Event

    class Inputs(BaseModel):
        pass

    async def execute(self) -> None:
        cls = type(self)
        cls.active += 1
        cls.peak = max(cls.peak, cls.active)
        await cls.release.wait()
        cls.active -= 1


async def test_concurrency_reaches_but_never_exceeds_workers() -> None:
    Gauge.active = Gauge.peak = 0
    Gauge.release = anyio.Event()
    client = FakeReports()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_pool, [Gauge], [st(f"s{i}", "Gauge") for i in range(10)], client, 3)
        await anyio.wait_all_tasks_blocked()
        assert Gauge.active == 3
        Gauge.release.set()
    assert Gauge.peak == 3
    assert len(client.reports) == 10


class Fresh(BaseNode):
    class Inputs(BaseModel):
        pass

    async def execute(self) -> None:
        assert not hasattr(self, "used")  # a reused instance would be reported errored
        self.used = True


async def test_a_fresh_node_instance_per_state() -> None:
    client = FakeReports()
    await run_pool([Fresh], [st(f"s{i}", "Fresh") for i in range(5)], client, workers=1)
    assert [r[0] for r in client.reports] == ["executed"] * 5


class SyncBlocking(BaseNode):
    gate = threading.Event()
    threads: list[int] = []  # noqa: RUF012

    class Inputs(BaseModel):
        pass

    class Outputs(BaseModel):
        ok: str

    def execute(self) -> BaseModel:
        type(self).threads.append(threading.get_ident())
        assert type(self).gate.wait(10)
        return self.Outputs(ok="yes")


async def test_sync_execute_runs_in_a_thread_without_blocking_others() -> None:
    SyncBlocking.gate.clear()
    SyncBlocking.threads = []
    client = FakeReports()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_pool, [SyncBlocking, EchoNode],
                      [st("sync", "SyncBlocking"), st("echo", text="x")], client, 2)
        while not client.reports:
            await client.changed.wait()
        # The async state finished while the sync one is still blocked in its thread.
        assert client.reports == [("executed", "echo", [{"text": "x"}])]
        SyncBlocking.gate.set()
    assert ("executed", "sync", [{"ok": "yes"}]) in client.reports
    assert SyncBlocking.threads != [threading.get_ident()]


async def test_a_failing_report_does_not_kill_the_worker() -> None:
    client = FakeReports()
    client.fail_next = 1
    await run_pool([EchoNode], [st("a", text="1"), st("b", text="2")], client, workers=1)
    assert client.reports == [("executed", "b", [{"text": "2"}])]


class Exits(BaseNode):
    """Raises a BaseException that is not a cancellation, from async or plain ``execute``."""

    class Inputs(BaseModel):
        kind: str

    async def execute(self) -> None:
        raise {"exit": SystemExit(3), "interrupt": KeyboardInterrupt()}[self.inputs.kind]


class SyncExits(BaseNode):
    class Inputs(BaseModel):
        pass

    def execute(self) -> None:
        raise SystemExit("bye")


@pytest.mark.parametrize(
    ("state", "error"),
    [
        pytest.param(st("s", "Exits", kind="exit"), "Node Exits raised SystemExit: 3", id="exit"),
        pytest.param(st("s", "Exits", kind="interrupt"),
                     "Node Exits raised KeyboardInterrupt: KeyboardInterrupt", id="interrupt"),
        pytest.param(st("s", "SyncExits"), "Node SyncExits raised SystemExit: bye", id="sync"),
    ],
)
async def test_a_node_raising_systemexit_is_errored_and_the_worker_goes_on(
    state: ClaimedState, error: str
) -> None:
    client = FakeReports()
    await run_pool([Exits, SyncExits, EchoNode], [state, st("next", text="x")], client, workers=1)
    assert client.reports == [("errored", "s", error), ("executed", "next", [{"text": "x"}])]


class StrayCancel(BaseNode):
    """Awaits a task that something else cancelled: asyncio hands the node a CancelledError."""

    class Inputs(BaseModel):
        pass

    async def execute(self) -> None:
        task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
        task.cancel()
        await task


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # trio has no stray cancellation
async def test_a_stray_cancellation_is_errored_not_a_dead_worker() -> None:
    client = FakeReports()
    await run_pool([StrayCancel, EchoNode], [st("s", "StrayCancel"), st("next", text="x")],
                   client, workers=1)
    assert client.reports == [
        ("errored", "s", "Node StrayCancel raised CancelledError although nothing cancelled it "
                         "(did it await a task that was cancelled?)"),
        ("executed", "next", [{"text": "x"}]),
    ]


class Unsendable(BaseNode):
    class Inputs(BaseModel):
        pass

    async def execute(self) -> None:
        raise PruneSignal({"when": object(), "note": "fine"})


async def test_a_prune_whose_data_cannot_be_sent_is_errored_saying_why() -> None:
    client = FakeReports()
    await run_pool([Unsendable], [st("s", "Unsendable")], client)
    [(kind, state_id, error)] = client.reports
    assert (kind, state_id) == ("errored", "s")
    assert "PruneSignal with data that cannot be sent as JSON" in error
    assert "<class 'object'>" in error

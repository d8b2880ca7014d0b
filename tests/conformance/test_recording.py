"""The recording layer (conformance/_recording.py): exchanges, probe events, waiting."""

from __future__ import annotations

import anyio
import httpx
import pytest

from conformance import EventLog, RecordingTransport
from conformance._recording import RecordingClock, request_kind
from exo_ref import ManualClock


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        pytest.param("PUT", "/v0/namespace/ns/nodes/", "register", id="register"),
        pytest.param("POST", "/v0/namespace/ns/states/enqueue", "enqueue", id="enqueue"),
        pytest.param("POST", "/v0/namespace/ns/state/a1/executed", "executed", id="executed"),
        pytest.param(
            "POST", "/v0/namespace/ns/state/a1/re-enqueue-after", "re-enqueue-after", id="requeue"
        ),
        pytest.param("GET", "/v0/namespace/ns/state/a1/secrets", "secrets", id="secrets"),
    ],
)
def test_request_kinds_follow_contract_8_3(method: str, path: str, kind: str) -> None:
    assert request_kind(method, path) == kind


async def test_exchanges_record_bodies_status_and_errors() -> None:
    clock = ManualClock(start=100.0)
    log = EventLog(clock)
    log.bind_loop()

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("boom"):
            raise httpx.ConnectError("down", request=request)
        return httpx.Response(201, json={"echo": request.url.path})

    transport = RecordingTransport(httpx.MockTransport(handle), log, "runtime")
    async with httpx.AsyncClient(transport=transport, base_url="http://sm") as client:
        reply = await client.post("/v0/namespace/ns/state/s1/executed", json={"outputs": []})
        with pytest.raises(httpx.ConnectError):
            await client.get("/boom")
    assert reply.json() == {"echo": "/v0/namespace/ns/state/s1/executed"}
    first, second = log.exchanges
    assert (first.kind, first.state_id, first.request, first.status) == (
        "executed",
        "s1",
        {"outputs": []},
        201,
    )
    assert first.ok
    assert first.sent_at == 100.0
    assert first.done_seq is not None
    assert first.sent_seq < first.done_seq
    assert (second.status, second.error, second.ok) == (None, "ConnectError", False)


async def test_executions_number_attempts_per_case() -> None:
    log = EventLog(ManualClock())
    first = log.start_execution("c1")
    log.end_execution(first, "raised")
    second = log.start_execution("c1")
    other = log.start_execution("c2")
    assert (first.attempt, second.attempt, other.attempt) == (1, 2, 1)
    assert first.end_seq is not None
    assert first.end_seq < second.start_seq


async def test_recording_clock_records_sleeps() -> None:
    clock = ManualClock()
    log = EventLog(clock)
    recording = RecordingClock(clock, log)
    async with anyio.create_task_group() as tg:
        tg.start_soon(recording.sleep, 2.5)
        await anyio.wait_all_tasks_blocked()
        clock.advance(2.5)
    assert [(s.seconds, s.end_seq is not None) for s in log.sleeps] == [(2.5, True)]


async def test_wait_for_returns_when_the_predicate_holds() -> None:
    clock = ManualClock(auto_advance=True)
    log = EventLog(clock)
    log.bind_loop()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run_auto_advance)

        async def later() -> None:
            await clock.sleep(3.0)
            log.mark("done")

        tg.start_soon(later)
        reached = await log.wait_for(
            lambda: "done" in log.marks, virtual_deadline=clock.now() + 10, real_timeout=5
        )
        tg.cancel_scope.cancel()
    assert reached


async def test_wait_for_gives_up_at_the_virtual_deadline() -> None:
    clock = ManualClock(auto_advance=True)
    log = EventLog(clock)
    log.bind_loop()
    start = clock.now()
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run_auto_advance)
        reached = await log.wait_for(
            lambda: False,
            virtual_deadline=start + 60,
            real_timeout=5,
            settle_polls=0,
            alarm=True,
        )
        tg.cancel_scope.cancel()
    assert not reached
    assert clock.now() >= start + 60

"""``FakeStateManager``: lifecycle, request log, read helpers, wait_for_run, cron (§4.7)."""

from __future__ import annotations

import anyio
import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

import fake_state_manager
from exo_ref import _clock
from fake_state_manager import FakeStateManager, ManualClock, RecordedRequest, SystemClock
from tests.builders import graph_node

from .http_support import KEY, PREFIX, START, claim, ok, registration, running, setup_graph, trigger

EVERY_MINUTE = [{"type": "CRON", "value": {"expression": "* * * * *"}}]


def test_public_api_is_exactly_all() -> None:
    # isidentifier: pytest's assertion rewriting (exo-ref ships a pytest11 plugin, so pytest
    # rewrites the whole distribution) adds "@py_builtins" and "@pytest_ar" to each module.
    exported = {
        name
        for name in dir(fake_state_manager)
        if not name.startswith("_") and name.isidentifier()
    }
    assert set(fake_state_manager.__all__) == exported - {"annotations"}
    assert len(set(fake_state_manager.__all__)) == len(fake_state_manager.__all__)
    assert fake_state_manager.ManualClock is _clock.ManualClock
    assert fake_state_manager.SystemClock is _clock.SystemClock
    assert fake_state_manager.DEFAULT_API_KEY == "exo-ref-dev-key"


async def test_defaults_and_client_headers() -> None:
    sm = FakeStateManager()
    assert isinstance(sm.clock, SystemClock)
    assert (sm.api_key, sm.uri) == ("exo-ref-dev-key", "http://fake-state-manager")
    async with sm, sm.client() as client:
        assert client.headers["x-api-key"] == "exo-ref-dev-key"
        assert (await client.get("/v0/namespaces")).status_code == 200


async def test_requests_are_recorded_with_clock_time_body_and_status() -> None:
    async with running() as (sm, client):
        await sm.clock.sleep(3)
        await client.post(f"{PREFIX}/states/enqueue", json={"nodes": ["A"], "batch_size": 1})
        await client.post(f"{PREFIX}/states/enqueue", content=b"{", headers={"x-api-key": "no"})
        await client.get("/missing")
    assert sm.requests == [
        RecordedRequest(
            START + 3, "POST", f"{PREFIX}/states/enqueue", {"nodes": ["A"], "batch_size": 1}, 200
        ),
        RecordedRequest(START + 3, "POST", f"{PREFIX}/states/enqueue", None, 422),
        RecordedRequest(START + 3, "GET", "/missing", None, 404),
    ]


async def test_request_recording_can_be_turned_off() -> None:
    async with running(record_requests=False) as (sm, client):
        await client.get("/health")
    assert sm.requests == []


async def test_entering_twice_is_refused() -> None:
    sm = FakeStateManager(clock=ManualClock())
    async with sm:
        with pytest.raises(RuntimeError, match="already running"):
            await sm.__aenter__()


async def test_an_error_inside_the_context_propagates_and_stops_background_tasks() -> None:
    sm = FakeStateManager(clock=ManualClock(auto_advance=True))

    async def fail_inside() -> None:
        async with sm:
            await anyio.wait_all_tasks_blocked()
            raise ValueError("from the test")

    with pytest.raises(ValueError, match="from the test"):
        await fail_inside()
    async with sm:  # and it can be entered again afterwards
        pass


async def test_two_fakes_on_one_manual_clock_share_a_single_auto_advancer() -> None:
    clock = ManualClock(START, auto_advance=True)
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.now())

    async with (
        FakeStateManager(clock=clock),
        FakeStateManager(clock=clock),
        anyio.create_task_group() as tg,
    ):
        for seconds in (1, 2, 3):
            tg.start_soon(sleeper, seconds)
    assert woke == [START + 1, START + 2, START + 3]


async def test_states_and_summary_read_what_the_api_serves() -> None:
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_id = await trigger(client)
        (state,) = sm.states(run_id)
        assert (state["id"], state["status"], state["identifier"]) == (state["id"], "CREATED", "a")
        listed = await ok(client.get(f"{PREFIX}/runs/1/10"))
        assert listed["runs"] == [sm.run_summary(run_id)]
        with pytest.raises(LookupError, match="no run 'nope'"):
            sm.run_summary("nope")
        with pytest.raises(LookupError):
            await sm.wait_for_run("nope")


async def test_wait_for_run_wakes_on_the_finishing_request() -> None:
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_id = await trigger(client)
        results: list[dict[str, object]] = []

        async def waiter() -> None:
            results.append(await sm.wait_for_run(run_id))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.wait_all_tasks_blocked()
            assert results == []
            (state,) = await claim(client, "A")
            await anyio.wait_all_tasks_blocked()
            assert results == []  # still QUEUED
            await ok(
                client.post(f"{PREFIX}/state/{state['state_id']}/executed", json={"outputs": [{}]})
            )
        assert results[0]["status"] == "SUCCESS"
        assert results[0]["run_id"] == run_id


async def test_wait_for_run_times_out_with_the_summary() -> None:
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_id = await trigger(client)
        with pytest.raises(TimeoutError, match=f"run {run_id} still PENDING"):
            await sm.wait_for_run(run_id, timeout=0.05)


async def test_cron_fires_at_its_exact_time_on_the_manual_clock() -> None:
    async with running() as (sm, client):
        await setup_graph(
            client, [registration("A")], [graph_node("a", "A")], triggers=EVERY_MINUTE
        )
        assert (await ok(client.get(f"{PREFIX}/runs/1/10")))["total"] == 0
        await sm.clock.sleep(150)  # auto-advance wakes the cron loop at 00:01 and 00:02
        # No request in between: the cron loop fired them, at the due times.
        runs = sm.engine.list_runs("ns", 1, 10)["runs"]
        assert [r["created_at"] for r in runs] == ["2026-01-01T00:02:00", "2026-01-01T00:01:00"]
        assert len(await claim(client, "A")) == 2


async def test_cron_fires_lazily_on_a_request_without_the_context_manager() -> None:
    clock = ManualClock(START)
    sm = FakeStateManager(api_key=KEY, clock=clock)
    async with sm.client() as client:
        await setup_graph(
            client, [registration("A")], [graph_node("a", "A")], triggers=EVERY_MINUTE
        )
        clock.advance(61)
        listed = await ok(client.get(f"{PREFIX}/runs/1/10"))
    assert listed["total"] == 1


async def test_cron_added_after_start_reschedules_the_loop() -> None:
    async with running(clock=ManualClock(START)) as (sm, client):
        clock = sm.clock
        assert isinstance(clock, ManualClock)
        await anyio.wait_all_tasks_blocked()  # cron loop asleep with nothing due
        await setup_graph(
            client, [registration("A")], [graph_node("a", "A")], triggers=EVERY_MINUTE
        )
        await anyio.wait_all_tasks_blocked()
        clock.advance(60)
        await anyio.wait_all_tasks_blocked()
        assert sm.engine.list_runs("ns", 1, 10)["total"] == 1



async def test_a_delay_scheduled_while_the_loop_sleeps_wakes_it_and_plain_reports_do_not() -> None:
    # After each request the loop's wake-up time is looked at again only if the engine's
    # schedule_mark moved: a re-enqueue does move it, an executed without delays does not.
    async with running(clock=ManualClock(START)) as (sm, client):
        clock = sm.clock
        assert isinstance(clock, ManualClock)
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_id = await trigger(client)
        (state,) = await claim(client, "A")
        await anyio.wait_all_tasks_blocked()  # the loop asleep until its next tick
        looked: list[float | None] = []
        real = sm.engine.next_due_time

        def spy() -> float | None:
            looked.append(due := real())
            return due

        sm.engine.next_due_time = spy  # type: ignore[method-assign]
        await ok(client.post(
            f"{PREFIX}/state/{state['state_id']}/re-enqueue-after", json={"enqueue_after": 500}
        ))
        assert looked == [START + 0.5]
        await anyio.wait_all_tasks_blocked()  # rescheduled: the loop looked once more
        looked.clear()
        clock.advance(0.5)
        (state,) = await claim(client, "A")
        looked.clear()
        executed = f"{PREFIX}/state/{state['state_id']}/executed"
        await ok(client.post(executed, json={"outputs": [{}]}))
        assert looked == []
        assert (await sm.wait_for_run(run_id, timeout=1))["status"] == "SUCCESS"


class _Doorman:
    """Middleware that notes every path and answers ``/teapot`` itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
            if scope["path"] == "/teapot":
                await send({"type": "http.response.start", "status": 418, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)


async def test_wrap_puts_middleware_in_front_of_the_in_process_app() -> None:
    sm = FakeStateManager()
    doorman = sm.wrap(_Doorman)
    async with sm, sm.client() as client:
        assert (await client.get("/teapot")).status_code == 418
        assert (await client.get("/v0/namespaces")).status_code == 200
    assert sm.app is doorman
    assert doorman.paths == ["/teapot", "/v0/namespaces"]
    assert [r.path for r in sm.requests] == ["/v0/namespaces"]  # the fake never saw the teapot


def test_wrap_applies_to_the_served_app_and_a_second_wrap_goes_outside() -> None:
    sm = FakeStateManager(clock=SystemClock())
    inner = sm.wrap(_Doorman)
    inner_had_seen: list[int] = []

    def outer(app: ASGIApp) -> ASGIApp:
        async def note(scope: Scope, receive: Receive, send: Send) -> None:
            inner_had_seen.append(len(inner.paths))
            await app(scope, receive, send)

        return note

    sm.wrap(outer)
    with sm.serve_in_thread() as uri:
        assert httpx.get(f"{uri}/teapot").status_code == 418
    assert (inner_had_seen, inner.paths) == ([0], ["/teapot"])


def test_serve_in_thread_refuses_a_manual_clock() -> None:
    sm = FakeStateManager(clock=ManualClock())
    with pytest.raises(TypeError, match="needs a real clock"), sm.serve_in_thread():
        pass


async def test_cron_that_stops_firing_never_fails_a_request() -> None:
    # Fires once (2027-01-01, a year field), then croniter finds no next date: no 5xx.
    clock = ManualClock(START)
    once = [{"type": "CRON", "value": {"expression": "0 0 1 1 * 0 2027"}}]
    sm = FakeStateManager(api_key=KEY, clock=clock)
    async with sm.client() as client:
        await setup_graph(client, [registration("A")], [graph_node("a", "A")], triggers=once)
        clock.advance(366 * 86400)
        listed = await ok(client.get(f"{PREFIX}/runs/1/10"))
        assert listed["total"] == 1
        assert (await ok(client.get(f"{PREFIX}/runs/1/10")))["total"] == 1

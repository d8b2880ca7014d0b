"""exo_ref._runtime_client: the state-manager HTTP client (contract §8.3)."""

from __future__ import annotations

import itertools
import random
import socket

import anyio
import httpx
import pytest

from exo_ref import (
    AuthenticationError,
    Backoff,
    ConfigurationError,
    InvalidResponseError,
    ManualClock,
    RegistrationError,
    Runtime,
    StateManagerError,
    StateManagerTimeoutError,
    StateManagerTLSError,
    StateManagerUnavailableError,
)
from exo_ref._runtime_client import ReportOutcome, StateManagerClient
from exo_ref._wire import RegisterRequest
from fake_state_manager import FakeStateManager, SystemClock
from tests.builders import NAMESPACE, graph_node

from .helpers import (
    KEY,
    EchoNode,
    Recorder,
    client_settings,
    json_response,
    make_client,
    run_clock,
    start_graph,
)

NOT_QUEUED = json_response(400, {"detail": "State is not queued"})
UNAVAILABLE = json_response(503, {"detail": "down"})


def test_backoff_grows_is_capped_and_jittered() -> None:
    backoff = Backoff(initial=0.1, maximum=2.0, multiplier=2.0, jitter=0.5)
    rng = random.Random(1)
    delays = [backoff.delay(n, rng) for n in range(1, 12)]
    assert all(0.05 <= d <= 0.1 for d in delays[:1])
    assert all(later >= earlier for earlier, later in itertools.pairwise(delays[:5]))
    assert all(1.0 <= d <= 2.0 for d in delays[6:])
    assert len(set(delays)) == len(delays)  # jittered
    assert backoff.delay(10_000, rng) <= 2.0  # no overflow


async def test_register_sends_upstream_body_with_key_header() -> None:
    recorder = Recorder()
    async with make_client(recorder, ManualClock()) as client:
        await client.register(
            RegisterRequest.for_nodes(name="rt", namespace=NAMESPACE, nodes=[EchoNode])
        )
    (call,) = recorder.calls
    assert call.method == "PUT"
    assert call.path == "/v0/namespace/ns/nodes/"
    assert call.headers["x-api-key"] == KEY
    assert call.body == {
        "runtime_name": "rt",
        "runtime_namespace": NAMESPACE,
        "nodes": [
            {
                "name": "EchoNode",
                "namespace": NAMESPACE,
                "inputs_schema": EchoNode.Inputs.model_json_schema(),
                "outputs_schema": EchoNode.Outputs.model_json_schema(),
                "secrets": [],
            }
        ],
    }


async def test_register_retries_while_unreachable_then_succeeds() -> None:
    clock = ManualClock()
    recorder = Recorder(
        script={
            "/nodes/": [
                httpx.ConnectError("refused"),
                UNAVAILABLE,
                httpx.ReadTimeout("slow"),
                json_response(429, {}, **{"retry-after": "3"}),
            ]
        }
    )
    async with anyio.create_task_group() as tg, make_client(recorder, clock) as client:
        await run_clock(clock, tg)
        start = clock.now()
        await client.register(RegisterRequest.for_nodes(name="rt", namespace=NAMESPACE, nodes=[]))
        tg.cancel_scope.cancel()
    assert len(recorder.calls) == 5
    # Backoff 0.1, 0.2, 0.4 (each jittered down by at most half), then Retry-After: 3 s.
    assert 3.0 + 0.35 <= clock.now() - start <= 3.0 + 0.7


async def test_register_401_fails_at_once_without_the_key() -> None:
    recorder = Recorder(script={"/nodes/": [json_response(401, {"detail": "Invalid API key"})]})
    async with make_client(recorder, ManualClock()) as client:
        with pytest.raises(AuthenticationError, match="refused the API key") as info:
            await client.register(
                RegisterRequest.for_nodes(name="rt", namespace=NAMESPACE, nodes=[])
            )
    assert KEY not in str(info.value)
    assert len(recorder.calls) == 1


async def test_register_other_4xx_fails_at_once_with_detail() -> None:
    recorder = Recorder(script={"/nodes/": [json_response(422, {"detail": "bad body"})]})
    async with make_client(recorder, ManualClock()) as client:
        with pytest.raises(RegistrationError, match="422: bad body"):
            await client.register(
                RegisterRequest.for_nodes(name="rt", namespace=NAMESPACE, nodes=[])
            )
    assert len(recorder.calls) == 1


async def test_status_is_checked_before_json() -> None:
    html = httpx.Response(502, text="<html>Bad Gateway</html>")
    recorder = Recorder(script={"/enqueue": [html]})
    async with make_client(recorder, ManualClock()) as client:
        with pytest.raises(Exception, match=r"502: <html>Bad Gateway") as info:
            await client.enqueue(["EchoNode"], 4)
    assert info.value.status_code == 502  # type: ignore[attr-defined]


async def test_success_with_unreadable_body_is_invalid_response() -> None:
    recorder = Recorder(script={"/enqueue": [httpx.Response(200, text="not json")]})
    async with make_client(recorder, ManualClock()) as client:
        with pytest.raises(InvalidResponseError, match="unexpected body"):
            await client.enqueue(["EchoNode"], 4)



async def test_an_unreadable_body_is_quoted_with_the_key_masked() -> None:
    echo = httpx.Response(200, json={"states": "none", "echo": "p" * 150 + KEY})
    recorder = Recorder(script={"/enqueue": [echo]})
    async with make_client(recorder, ManualClock()) as client:
        with pytest.raises(InvalidResponseError) as info:
            await client.enqueue(["EchoNode"], 4)
    assert KEY[:4] not in info.value.detail.replace("***", "")
    assert "ppp***" in info.value.detail


async def test_an_unreadable_secrets_body_is_never_quoted() -> None:
    # A secrets answer holds the graph's secrets: not one character of it goes into the error.
    odd = httpx.Response(200, json={"secrets": {"token": ["graph-secret-value"]}})
    recorder = Recorder(script={"/secrets": [odd]})
    async with make_client(recorder, ManualClock()) as client:
        with pytest.raises(InvalidResponseError) as info:
            await client.secrets("s1")
    assert "graph-secret-value" not in f"{info.value} {info.value.detail!r}"

@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param(httpx.ConnectError("refused"), StateManagerUnavailableError, id="connect"),
        pytest.param(httpx.ReadError("reset"), StateManagerUnavailableError, id="reset"),
        pytest.param(httpx.ReadTimeout("slow"), StateManagerTimeoutError, id="timeout"),
    ],
)
async def test_transport_errors_are_translated(fault: Exception, error: type[Exception]) -> None:
    recorder = Recorder(script={"/enqueue": [fault]})
    async with make_client(recorder, ManualClock()) as client:
        with pytest.raises(error, match="POST /states/enqueue") as info:
            await client.enqueue(["EchoNode"], 4)
    assert KEY not in str(info.value)


async def test_poll_sends_nodes_and_size_and_parses_states() -> None:
    recorder = Recorder(
        states=[
            {
                "state_id": "s1",
                "node_name": "EchoNode",
                "identifier": "a",
                "inputs": {"text": "x"},
                "created_at": "t",
            }
        ]
    )
    async with make_client(recorder, ManualClock()) as client:
        states = await client.enqueue(["EchoNode"], 3)
    assert recorder.calls[0].body == {"nodes": ["EchoNode"], "batch_size": 3}
    assert [(s.state_id, s.inputs) for s in states] == [("s1", {"text": "x"})]


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([httpx.ConnectError("refused")], id="connect"),
        pytest.param([httpx.ReadError("reset"), httpx.RemoteProtocolError("eof")], id="resets"),
        pytest.param([UNAVAILABLE, UNAVAILABLE], id="503s"),
        pytest.param([httpx.WriteTimeout("slow"), json_response(429, {})], id="timeout-429"),
    ],
)
async def test_reports_retry_transient_faults_until_delivered(faults: list[object]) -> None:
    clock = ManualClock()
    recorder = Recorder(script={"/executed": list(faults)})  # type: ignore[arg-type]
    async with anyio.create_task_group() as tg, make_client(recorder, clock) as client:
        await run_clock(clock, tg)
        outcome = await client.report_executed("s1", [{"text": "x"}])
        tg.cancel_scope.cancel()
    assert outcome is ReportOutcome.DELIVERED
    calls = recorder.paths("/state/s1/executed")
    assert len(calls) == len(faults) + 1
    assert all(c.body == {"outputs": [{"text": "x"}]} for c in calls)


async def test_lost_response_then_not_queued_counts_as_delivered() -> None:
    # The first attempt was applied by the server but its response was lost (reset).
    clock = ManualClock()
    recorder = Recorder(script={"/prune": [httpx.ReadError("reset after apply"), NOT_QUEUED]})
    async with anyio.create_task_group() as tg, make_client(recorder, clock) as client:
        await run_clock(clock, tg)
        outcome = await client.report_prune("s1", {"why": "x"})
        tg.cancel_scope.cancel()
    assert outcome is ReportOutcome.ALREADY_APPLIED
    assert len(recorder.calls) == 2


async def test_not_queued_on_first_attempt_is_rejected_not_retried() -> None:
    recorder = Recorder(script={"/errored": [NOT_QUEUED]})
    async with make_client(recorder, ManualClock()) as client:
        outcome = await client.report_errored("s1", "boom")
    assert outcome is ReportOutcome.REJECTED
    assert len(recorder.calls) == 1


async def test_refused_connection_then_400_is_rejected() -> None:
    # A refused connection never reached the server, so a later 400 is a real refusal.
    clock = ManualClock()
    recorder = Recorder(script={"/executed": [httpx.ConnectError("refused"), NOT_QUEUED]})
    async with anyio.create_task_group() as tg, make_client(recorder, clock) as client:
        await run_clock(clock, tg)
        outcome = await client.report_executed("s1", [])
        tg.cancel_scope.cancel()
    assert outcome is ReportOutcome.REJECTED


async def test_reports_retry_until_cancelled() -> None:
    clock = ManualClock()
    recorder = Recorder(script={"/re-enqueue-after": [UNAVAILABLE] * 1000})
    async with anyio.create_task_group() as tg, make_client(recorder, clock) as client:
        await run_clock(clock, tg)
        with anyio.CancelScope() as scope:
            tg.start_soon(lambda: _cancel_after(clock, 60.0, scope))
            await client.report_re_enqueue_after("s1", 5)
        tg.cancel_scope.cancel()
    assert scope.cancelled_caught
    calls = recorder.paths("/re-enqueue-after")
    assert 8 <= len(calls) <= 20  # capped backoff (10 s) over 60 s
    assert calls[0].body == {"enqueue_after": 5}


async def _cancel_after(clock: ManualClock, seconds: float, scope: anyio.CancelScope) -> None:
    await clock.sleep(seconds)
    scope.cancel()


async def test_secrets_give_up_after_a_few_attempts() -> None:
    clock = ManualClock()
    recorder = Recorder(script={"/secrets": [UNAVAILABLE] * 10})
    async with anyio.create_task_group() as tg, make_client(recorder, clock) as client:
        await run_clock(clock, tg)
        with pytest.raises(Exception, match="503"):
            await client.secrets("s1")
        tg.cancel_scope.cancel()
    assert len(recorder.calls) == 5


async def test_re_enqueue_after_never_sends_zero() -> None:
    recorder = Recorder()
    async with make_client(recorder, ManualClock()) as client:
        await client.report_re_enqueue_after("s1", 0)
    assert recorder.calls[0].body == {"enqueue_after": 1}


async def test_registration_counts_as_lost_only_after_an_outage_and_comes_back_once() -> None:
    # Re-registration (module docstring): an answer after unreachable/5xx requests is evidence.
    recorder = Recorder(
        script={"/states/enqueue": [UNAVAILABLE, httpx.ConnectError("refused"), None, None]}
    )
    clock = ManualClock()
    request = RegisterRequest.for_nodes(name="rt", namespace=NAMESPACE, nodes=[EchoNode])
    async with make_client(recorder, clock) as client:
        assert not await client.register_again_if_lost()  # nothing registered yet
        await client.register(request)
        for _ in range(2):
            with pytest.raises((StateManagerError, StateManagerUnavailableError)):
                await client.enqueue(["EchoNode"], 1)
        assert client.registration_lost is None  # still down: nothing to conclude yet
        await client.enqueue(["EchoNode"], 1)
        assert client.registration_lost is not None
        assert "after an outage" in client.registration_lost
        assert await client.register_again_if_lost()
        assert client.registration_lost is None
        await client.enqueue(["EchoNode"], 1)  # healthy: no further evidence
        assert not await client.register_again_if_lost()
    registrations = recorder.paths("/nodes/")
    assert len(registrations) == 2
    assert registrations[0].body == registrations[1].body


async def test_https_to_a_plain_server_fails_at_once_saying_to_use_http() -> None:
    # Issue 10: this used to retry an SSL error forever.
    sm = FakeStateManager(api_key=KEY, clock=SystemClock())
    with sm.serve_in_thread() as uri:
        secure = uri.replace("http://", "https://")
        rt = Runtime(NAMESPACE, "rt", [EchoNode], state_manager_uri=secure, key=KEY)
        with pytest.raises(StateManagerTLSError) as raised:
            await rt.run()
    message = str(raised.value)
    assert f"the TLS handshake with the state manager at {secure} failed" in message
    assert f"use {uri}" in message
    assert KEY not in message


async def test_an_unreachable_server_is_named_with_what_to_check() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = ManualClock()
    client = StateManagerClient(
        client_settings(f"http://127.0.0.1:{port}"),
        transport=None,
        clock=clock,
        rng=random.Random(0),
    )
    async with client:
        with pytest.raises(StateManagerUnavailableError) as raised:
            await client.enqueue(["EchoNode"], 1)
    message = str(raised.value)
    assert message.startswith(
        f"POST /states/enqueue could not reach the state manager at http://127.0.0.1:{port}: "
    )
    assert message.endswith(
        "check state_manager_uri= / EXOSPHERE_STATE_MANAGER_URI and that the state manager is"
        " running"
    )


@pytest.mark.parametrize("uri", ["http://h:8000/v0", "http://h:8000/v0/"])
def test_a_uri_with_the_version_is_refused_with_the_fix(uri: str) -> None:
    with pytest.raises(ConfigurationError, match=r"use 'http://h:8000' \(the version goes in"):
        Runtime(NAMESPACE, "rt", [EchoNode], state_manager_uri=uri, key=KEY)


# --- in process: an httpx.ASGITransport's app is called directly (exo_ref._calls.AsgiSender) --


def asgi_client(transport: httpx.AsyncBaseTransport) -> StateManagerClient:
    return StateManagerClient(
        client_settings(), transport=transport, clock=ManualClock(), rng=random.Random(0)
    )


def scope_recorder(body: bytes = b'{"namespace":"ns","count":0,"states":[]}') -> tuple[
    list[dict[str, object]], object
]:
    scopes: list[dict[str, object]] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        message = await receive()  # type: ignore[operator]
        received = message["body"]
        while message.get("more_body"):  # httpx sends the body, then an empty last part
            message = await receive()  # type: ignore[operator]
            received += message["body"]
        scopes.append({**scope, "body": received})
        await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})  # type: ignore[operator]

    return scopes, app


async def test_in_process_requests_build_the_scope_httpx_would() -> None:
    direct, direct_app = scope_recorder()
    via_httpx, httpx_app = scope_recorder()

    class Subclass(httpx.ASGITransport):  # not the exact class: goes through AsyncClient
        pass

    transports = [
        httpx.ASGITransport(app=direct_app, root_path="/r", client=("1.2.3.4", 5)),  # type: ignore[arg-type]
        Subclass(app=httpx_app, root_path="/r", client=("1.2.3.4", 5)),  # type: ignore[arg-type]
    ]
    for transport in transports:
        async with asgi_client(transport) as client:
            await client.enqueue(["EchoNode"], 2)
            await client.report_executed("odd id", [{"text": "x"}])
    assert len(direct) == len(via_httpx) == 2
    for mine, theirs in zip(direct, via_httpx, strict=True):
        mine_headers = dict(mine.pop("headers"))  # type: ignore[call-overload]
        theirs_headers = dict(theirs.pop("headers"))  # type: ignore[call-overload]
        theirs_headers.pop(b"accept-encoding")  # the body is read here, never compressed
        assert mine_headers == theirs_headers
        assert mine == theirs


async def test_in_process_runtime_sends_nothing_through_async_client(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[str] = []
    original = httpx.AsyncClient.send

    async def counting(self: httpx.AsyncClient, request: httpx.Request, **kwargs: object) -> object:
        sent.append(request.url.path)
        return await original(self, request, **kwargs)  # type: ignore[arg-type]

    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        rt = Runtime(NAMESPACE, "rt", [EchoNode], state_manager_uri=sm.uri, key=sm.api_key,
                     transport=sm.transport, clock=sm.clock, poll_interval=0.01)
        monkeypatch.setattr(httpx.AsyncClient, "send", counting)
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            run_id = await start_graph(sm, [graph_node("e", "EchoNode", {"text": "hi"})])
            run = await sm.wait_for_run(run_id)
            rt.stop()
    assert run["status"] == "SUCCESS"
    assert sent  # the test's own requests do go through AsyncClient...
    assert [p for p in sent if "/graph/" not in p] == []  # ...the runtime's never


async def test_in_process_app_errors_follow_raise_app_exceptions() -> None:
    async def broken(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("the app broke")

    raising = httpx.ASGITransport(app=broken)  # type: ignore[arg-type]
    async with asgi_client(raising) as client:
        with pytest.raises(RuntimeError, match="the app broke"):
            await client.enqueue(["EchoNode"], 1)
    quiet = httpx.ASGITransport(app=broken, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with asgi_client(quiet) as client:
        with pytest.raises(StateManagerError) as caught:
            await client.enqueue(["EchoNode"], 1)
    assert caught.value.status_code == 500


async def test_in_process_app_listening_for_a_disconnect_gets_it_after_the_answer() -> None:
    async def streaming(scope: object, receive: object, send: object) -> None:
        await receive()  # type: ignore[operator]
        async with anyio.create_task_group() as tg:

            async def listen() -> None:
                message = await receive()  # type: ignore[operator]
                assert message["type"] == "http.disconnect"

            tg.start_soon(listen)
            await send({"type": "http.response.start", "status": 200,  # type: ignore[operator]
                        "headers": []})
            for part in (b'{"count":0,', b'"states":[]}'):
                await send({"type": "http.response.body", "body": part,  # type: ignore[operator]
                            "more_body": True})
            await send({"type": "http.response.body", "body": b""})  # type: ignore[operator]

    async with asgi_client(httpx.ASGITransport(app=streaming)) as client:  # type: ignore[arg-type]
        assert await client.enqueue(["EchoNode"], 1) == []


async def test_in_process_malformed_poll_answer_is_invalid_response() -> None:
    _, app = scope_recorder(b'{"count": "many"}')
    async with asgi_client(httpx.ASGITransport(app=app)) as client:  # type: ignore[arg-type]
        with pytest.raises(InvalidResponseError, match="unexpected body"):
            await client.enqueue(["EchoNode"], 1)

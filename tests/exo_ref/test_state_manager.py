"""``exo_ref._state_manager.StateManager`` (contract §8.7 and the additions).

Two layers: ``httpx.MockTransport`` for exact bodies, statuses and polling on a ManualClock; and
the in-process fake state manager for the calls end to end.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx
import pytest

from exo_ref import (
    AuthenticationError,
    ConfigurationError,
    CronTrigger,
    ExoRefError,
    GraphNodeModel,
    GraphValidationError,
    InvalidResponseError,
    ManualClock,
    RetryPolicyModel,
    RetryStrategyEnum,
    StateManager,
    StateManagerError,
    StateManagerTimeoutError,
    StateManagerUnavailableError,
    StoreConfigModel,
    WaitTimeoutError,
)
from fake_state_manager import FakeStateManager

from .helpers import run_item

KEY = "sekret-key-123"
URI = "http://sm.test"
PREFIX = "/v0/namespace/ns"

T = TypeVar("T")
Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request."""

    def __init__(self, *answers: httpx.Response | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return answer(request) if callable(answer) else answer

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def make(recorder: Recorder, clock: ManualClock | None = None) -> StateManager:
    return StateManager(
        "ns", URI, KEY, transport=httpx.MockTransport(recorder), clock=clock or ManualClock(0.0)
    )


def graph_body(status: str, errors: list[str] | None = None) -> dict[str, Any]:
    return {"nodes": [], "secrets": {}, "validation_status": status,
            "validation_errors": errors or []}


async def auto_advancing(clock: ManualClock, call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()`` while the clock jumps whenever everything is blocked."""
    outcome: list[T] = []
    failure: list[ExoRefError] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run_auto_advance)
        try:
            outcome.append(await call())
        except ExoRefError as error:  # re-raised below, outside the task group
            failure.append(error)
        tg.cancel_scope.cancel()
    if failure:
        raise failure[0]
    return outcome[0]


NODE = GraphNodeModel(node_name="N", namespace="ns", identifier="n", inputs={"a": "x"})


# --- construction ---------------------------------------------------------------------------


def test_missing_uri_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXOSPHERE_STATE_MANAGER_URI", raising=False)
    with pytest.raises(ConfigurationError, match="EXOSPHERE_STATE_MANAGER_URI"):
        StateManager("ns", key=KEY)


def test_missing_key_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EXOSPHERE_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="EXOSPHERE_API_KEY"):
        StateManager("ns", URI)


def test_uri_without_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="http:// or https://"):
        StateManager("ns", "localhost:8000", KEY)


async def test_environment_fallback_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOSPHERE_STATE_MANAGER_URI", "http://env-host:9000/")
    monkeypatch.setenv("EXOSPHERE_API_KEY", "env-key")
    rec = Recorder(httpx.Response(200, json={"status": "CREATED", "run_id": "r"}))
    sm = StateManager("ns", transport=httpx.MockTransport(rec))
    await sm.trigger("g")
    (request,) = rec.requests
    # The trailing slash is dropped rather than producing "//v0" (contract §8.3).
    assert str(request.url) == "http://env-host:9000/v0/namespace/ns/graph/g/trigger"
    assert request.headers["x-api-key"] == "env-key"


# --- trigger / get_graph ----------------------------------------------------------------------


async def test_trigger_sends_upstream_body_and_returns_json() -> None:
    rec = Recorder(httpx.Response(200, json={"status": "CREATED", "run_id": "r1"}))
    result = await make(rec).trigger("g", inputs={"a": "1"}, store={"k": "v"}, start_delay=5)
    assert result == {"status": "CREATED", "run_id": "r1"}
    (request,) = rec.requests
    assert request.method == "POST"
    assert request.url.path == f"{PREFIX}/graph/g/trigger"
    assert request.headers["x-api-key"] == KEY
    assert rec.bodies() == [{"start_delay": 5, "inputs": {"a": "1"}, "store": {"k": "v"}}]


async def test_trigger_defaults_to_empty_inputs_and_store() -> None:
    rec = Recorder(httpx.Response(200, json={"status": "CREATED", "run_id": "r1"}))
    await make(rec).trigger("g")
    assert rec.bodies() == [{"start_delay": 0, "inputs": {}, "store": {}}]


async def test_trigger_error_has_status_and_detail_but_not_the_key() -> None:
    rec = Recorder(httpx.Response(400, json={"detail": f"Graph template is not valid {KEY}"}))
    with pytest.raises(StateManagerError) as info:
        await make(rec).trigger("g")
    assert info.value.status_code == 400
    assert str(info.value).startswith("Failed to trigger state: 400 Graph template is not valid")
    assert KEY not in str(info.value)


async def test_401_is_an_authentication_error_naming_the_env_var() -> None:
    rec = Recorder(httpx.Response(401, json={"detail": "Invalid API key"}))
    with pytest.raises(AuthenticationError, match="EXOSPHERE_API_KEY") as info:
        await make(rec).get_graph("g")
    assert KEY not in str(info.value)


async def test_html_error_page_is_reported_by_status_not_as_a_json_error() -> None:
    rec = Recorder(httpx.Response(502, text="<html>Bad Gateway</html>"))
    with pytest.raises(StateManagerError, match="Failed to get graph: 502 <html>Bad Gateway"):
        await make(rec).get_graph("g")


async def test_success_status_with_non_json_body_is_an_invalid_response() -> None:
    rec = Recorder(httpx.Response(200, text="not json"))
    with pytest.raises(InvalidResponseError, match="not a JSON object"):
        await make(rec).get_graph("g")


async def test_transport_failures_become_exo_ref_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(StateManagerUnavailableError, match="could not reach"):
        await make(Recorder(refuse)).get_graph("g")
    with pytest.raises(StateManagerTimeoutError, match="no answer in time"):
        await make(Recorder(hang)).get_graph("g")


# --- upsert_graph -----------------------------------------------------------------------------


async def test_upsert_sends_upstream_body_then_polls_until_valid() -> None:
    clock = ManualClock(0.0)
    rec = Recorder(
        httpx.Response(201, json=graph_body("PENDING")),
        httpx.Response(200, json=graph_body("PENDING")),
        httpx.Response(200, json=graph_body("PENDING")),
        httpx.Response(200, json=graph_body("ONGOING")),
        httpx.Response(200, json=graph_body("VALID")),
    )
    done: list[tuple[dict[str, Any], float]] = []

    async def upsert() -> None:
        graph = await make(rec, clock).upsert_graph(
            "g", [NODE], {"s": "v"},
            retry_policy=RetryPolicyModel(max_retries=1, strategy=RetryStrategyEnum.LINEAR),
            store_config=StoreConfigModel(required_keys=["k"]),
            triggers=[CronTrigger(expression="*/5 * * * *")],
            polling_interval=2,
        )
        done.append((graph, clock.now()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(upsert)
        await anyio.wait_all_tasks_blocked()
        while not done:
            clock.advance(2)
            await anyio.wait_all_tasks_blocked()
    graph, finished_at = done[0]
    assert graph["validation_status"] == "VALID"
    assert finished_at == 6.0  # GETs at 0 (at once), 2, 4 and 6
    # One GET right after the PUT, then one per polling_interval (ONGOING keeps polling).
    assert [r.method for r in rec.requests] == ["PUT", "GET", "GET", "GET", "GET"]
    assert rec.requests[0].url.path == f"{PREFIX}/graph/g"
    assert rec.bodies()[0] == {
        "secrets": {"s": "v"},
        "nodes": [{"node_name": "N", "namespace": "ns", "identifier": "n", "inputs": {"a": "x"},
                   "next_nodes": None, "unites": None}],
        "retry_policy": {"max_retries": 1, "strategy": "LINEAR", "backoff_factor": 2000,
                         "exponent": 2, "max_delay": None},
        "store_config": {"required_keys": ["k"], "default_values": {}},
        "triggers": [{"type": "CRON", "value": {"expression": "*/5 * * * *"}}],
    }


async def test_upsert_without_optional_parts_sends_only_secrets_and_nodes() -> None:
    rec = Recorder(httpx.Response(201, json=graph_body("VALID")))
    await make(rec).upsert_graph("g", [NODE], {})
    assert set(rec.bodies()[0]) == {"secrets", "nodes"}


async def test_upsert_times_out_with_a_clear_message() -> None:
    clock = ManualClock(0.0, auto_advance=True)
    rec = Recorder(httpx.Response(201, json=graph_body("PENDING")),
                   httpx.Response(200, json=graph_body("PENDING")))
    sm = make(rec, clock)
    with pytest.raises(WaitTimeoutError, match=r"timed out after 5 seconds.*still PENDING"):
        await auto_advancing(clock, lambda: sm.upsert_graph("g", [NODE], {}, validation_timeout=5))
    assert clock.now() == 5.0
    assert len(rec.requests) == 7  # the PUT, a GET at once, then one GET per second


async def test_upsert_invalid_raises_with_the_server_errors() -> None:
    rec = Recorder(httpx.Response(201, json=graph_body("INVALID", ["Node N does not exist."])))
    with pytest.raises(GraphValidationError, match="Graph validation failed: INVALID") as info:
        await make(rec).upsert_graph("g", [NODE], {})
    assert info.value.errors == ["Node N does not exist."]


async def test_upsert_refused_with_400_keeps_upstream_prefix() -> None:
    rec = Recorder(httpx.Response(400, json={"detail": "Error validating graph template: x"}))
    with pytest.raises(StateManagerError, match="Failed to upsert graph: 400 Error validating"):
        await make(rec).upsert_graph("g", [NODE], {})


# --- additions --------------------------------------------------------------------------------


async def test_read_additions_use_the_contract_paths() -> None:
    rec = Recorder(httpx.Response(200, json={}))
    sm = make(rec)
    await sm.list_runs(2, 50)
    await sm.get_run_graph("r1")
    await sm.get_node("g", "r1", "abc")
    await sm.list_nodes()
    await sm.list_graphs()
    assert [r.url.path for r in rec.requests] == [
        f"{PREFIX}/runs/2/50",
        f"{PREFIX}/states/run/r1/graph",
        f"{PREFIX}/graph/g/run/r1/node/abc",
        f"{PREFIX}/nodes/",
        f"{PREFIX}/graphs/",
    ]


async def test_wait_for_run_polls_on_the_clock_and_pages_through_runs() -> None:
    clock = ManualClock(0.0, auto_advance=True)
    full_page = [run_item(f"other{i}", "SUCCESS") for i in range(100)]

    def runs(status: str) -> Handler:
        def answer(request: httpx.Request) -> httpx.Response:
            page = int(request.url.path.split("/")[-2])
            items = full_page if page == 1 else [run_item("mine", status)]
            return httpx.Response(200, json={"runs": items, "total": 101})
        return answer

    rec = Recorder(runs("PENDING"), runs("PENDING"), runs("SUCCESS"))
    sm = make(rec, clock)
    summary = await auto_advancing(
        clock, lambda: sm.wait_for_run("mine", timeout=10, poll_interval=0.5)
    )
    assert summary["status"] == "SUCCESS"
    assert clock.now() == 0.5  # one wait between the PENDING and the SUCCESS read
    assert [r.url.path.split("/")[-2] for r in rec.requests] == ["1", "2", "1", "2"]


async def test_wait_for_run_timeout_names_the_run() -> None:
    clock = ManualClock(0.0, auto_advance=True)
    rec = Recorder(httpx.Response(200, json={"runs": [run_item("r9", "PENDING")]}))
    sm = make(rec, clock)
    with pytest.raises(WaitTimeoutError, match="run r9 did not finish within 3 seconds"):
        await auto_advancing(clock, lambda: sm.wait_for_run("r9", timeout=3, poll_interval=1))
    assert clock.now() == 3.0


# --- client lifetime --------------------------------------------------------------------------


class CountingTransport(httpx.MockTransport):
    def __init__(self, handler: Handler) -> None:
        super().__init__(handler)
        self.closed = 0

    async def aclose(self) -> None:
        self.closed += 1


def test_without_context_manager_works_across_event_loops() -> None:
    transport = CountingTransport(Recorder(httpx.Response(200, json=graph_body("VALID"))))
    sm = StateManager("ns", URI, KEY, transport=transport)
    # Upstream scripts call asyncio.run() per call; each call gets (and closes) its own client.
    assert anyio.run(sm.get_graph, "g")["validation_status"] == "VALID"
    assert anyio.run(sm.get_graph, "g", backend="trio")["validation_status"] == "VALID"
    assert transport.closed == 0  # a borrowed transport is never closed


async def test_context_manager_reuses_one_client_and_closes_it() -> None:
    rec = Recorder(httpx.Response(200, json=graph_body("VALID")))
    async with make(rec) as sm:
        await sm.get_graph("g")
        first = sm._client
        await sm.get_graph("g")
        assert first is not None
        assert sm._client is first
    assert sm._client is None
    assert first.is_closed


# --- against the in-process fake --------------------------------------------------------------


async def register(fake: FakeStateManager, *names: str) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "title": "A"}},
              "required": ["a"], "title": "Inputs"}
    nodes = [{"name": n, "namespace": "ns", "inputs_schema": schema,
              "outputs_schema": schema | {"title": "Outputs"}, "secrets": []} for n in names]
    async with fake.client() as http:
        response = await http.put(
            f"{PREFIX}/nodes/", json={"runtime_name": "rt", "runtime_namespace": "ns",
                                      "nodes": nodes},
        )
        assert response.status_code == 200, response.text


async def drain(fake: FakeStateManager) -> int:
    """Play a runtime by hand: claim every runnable state and report it executed."""
    executed = 0
    async with fake.client() as http:
        while True:
            claimed = (await http.post(f"{PREFIX}/states/enqueue",
                                       json={"nodes": ["N1", "N2"], "batch_size": 10})).json()
            if not claimed["states"]:
                return executed
            for state in claimed["states"]:
                response = await http.post(f"{PREFIX}/state/{state['state_id']}/executed",
                                           json={"outputs": [{"a": "out"}]})
                assert response.status_code == 200, response.text
                executed += 1


async def test_against_fake_upsert_trigger_and_read_back() -> None:
    clock = ManualClock(0.0, auto_advance=True)
    async with FakeStateManager(api_key=KEY, clock=clock) as fake:
        await register(fake, "N1", "N2")
        async with StateManager("ns", fake.uri, KEY, transport=fake.transport,
                                clock=clock) as sm:
            nodes = [
                GraphNodeModel(node_name="N1", namespace="ns", identifier="n1",
                               inputs={"a": "start"}, next_nodes=["n2"]),
                GraphNodeModel(node_name="N2", namespace="ns", identifier="n2",
                               inputs={"a": "${{ n1.outputs.a }}"}),
            ]
            graph = await sm.upsert_graph("g", nodes, {})
            assert graph["validation_status"] == "VALID"
            # The template's parts come back as JSON the models read (exo_ref._wire); a null
            # next_nodes is stored and served as [] (contract §4.1).
            read_back = [GraphNodeModel.model_validate(n) for n in graph["nodes"]]
            assert read_back == [nodes[0], nodes[1].model_copy(update={"next_nodes": []})]
            run = await sm.trigger("g", inputs={"a": "hello"})
            assert run["status"] == "CREATED"
            page = await sm.list_runs()
            assert [r["status"] for r in page["runs"]] == ["PENDING"]
            assert await drain(fake) == 2
            summary = await sm.wait_for_run(run["run_id"], timeout=5)
            assert (summary["status"], summary["success_count"]) == ("SUCCESS", 2)
            run_graph = await sm.get_run_graph(run["run_id"])
            assert run_graph["node_count"] == 2
            assert run_graph["edge_count"] == 1
            child = next(n for n in run_graph["nodes"] if n["identifier"] == "n2")
            details = await sm.get_node("g", run["run_id"], child["id"])
            assert details["inputs"] == {"a": "out"}
            assert [n["name"] for n in (await sm.list_nodes())["nodes"]] == ["N1", "N2"]
            assert (await sm.list_graphs())["count"] == 1


async def test_against_fake_two_roots_are_refused_and_unregistered_nodes_invalid() -> None:
    clock = ManualClock(0.0, auto_advance=True)
    async with FakeStateManager(api_key=KEY, clock=clock) as fake:
        await register(fake, "N1", "N2")
        sm = StateManager("ns", fake.uri, KEY, transport=fake.transport, clock=clock)
        two_roots = [
            GraphNodeModel(node_name="N1", namespace="ns", identifier="n1", inputs={"a": "x"}),
            GraphNodeModel(node_name="N2", namespace="ns", identifier="n2", inputs={"a": "x"}),
        ]
        # Contract §10 second case: a second root is a 400 at save time.
        with pytest.raises(StateManagerError, match="exactly one root") as info:
            await sm.upsert_graph("g", two_roots, {})
        assert info.value.status_code == 400
        ghost = [GraphNodeModel(node_name="Ghost", namespace="ns", identifier="g",
                                inputs={"a": "x"})]
        with pytest.raises(GraphValidationError, match="Ghost"):
            await sm.upsert_graph("g2", ghost, {})
        with pytest.raises(AuthenticationError):
            await StateManager("ns", fake.uri, "wrong", transport=fake.transport).get_graph("g")


async def test_path_segments_are_percent_encoded() -> None:
    rec = Recorder(httpx.Response(200, json={"status": "CREATED", "run_id": "r"}))
    await make(rec).trigger("my graph/v2")
    assert rec.requests[0].url.raw_path == b"/v0/namespace/ns/graph/my%20graph%2Fv2/trigger"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"polling_interval": 0}, "polling_interval", id="zero-polling"),
        pytest.param({"validation_timeout": -1}, "validation_timeout", id="negative-timeout"),
    ],
)
async def test_upsert_refuses_bad_polling_settings_before_sending(
    kwargs: dict[str, float], message: str
) -> None:
    rec = Recorder(httpx.Response(201, json=graph_body("VALID")))
    with pytest.raises(ConfigurationError, match=message):
        await make(rec).upsert_graph("g", [NODE], {}, **kwargs)
    assert rec.requests == []


def test_a_client_of_the_in_process_fake_without_its_transport_fails_at_once() -> None:
    # Issue 11: without transport= this retried DNS for http://fake-state-manager forever.
    with pytest.raises(ConfigurationError, match=r"pass transport=sm.transport"):
        StateManager("ns", state_manager_uri="http://fake-state-manager", key="k")


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(httpx.Response(400, json={"detail": "x" * 497 + KEY}), id="detail-cut-at-500"),
        pytest.param(httpx.Response(502, text="y" * 197 + KEY), id="text-cut-at-200"),
    ],
)
async def test_a_key_at_the_cut_of_a_long_error_text_is_masked_whole(
    response: httpx.Response,
) -> None:
    # The text is cut to a bounded length: masking after the cut would leave the key's start.
    with pytest.raises(StateManagerError) as info:
        await make(Recorder(response)).trigger("g")
    assert KEY[:3] not in str(info.value).replace("***", "")
    assert str(info.value).endswith("***")

"""exo_ref.testing: run_node's outcomes, ExoEnv's runs and stuck check, the in-process URI check."""

from __future__ import annotations

import json
import random
import threading
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel

import fake_state_manager
from exo_ref import (
    BaseNode,
    ConfigurationError,
    ManualClock,
    NodeValidationError,
    PruneSignal,
    ReQueueAfterSignal,
    RetryPolicyModel,
    Runtime,
    SystemClock,
)
from exo_ref._config import RuntimeSettings
from exo_ref._runtime_client import IN_PROCESS_HOST, StateManagerClient
from exo_ref.testing import (
    ExoEnv,
    NodeContractError,
    RunResult,
    RunStuckError,
    assert_outputs,
    assert_run_failed,
    assert_run_succeeded,
    graph_node,
    run_node,
)

from .helpers import run_item

# --- nodes -------------------------------------------------------------------------------------


class Echo(BaseNode):
    class Inputs(BaseModel):
        text: str

    class Outputs(BaseModel):
        text: str

    async def execute(self) -> Outputs:
        return self.Outputs(text=self.inputs.text)


class Spread(BaseNode):
    """Fans out: one output per comma-separated item."""

    class Inputs(BaseModel):
        items: str

    class Outputs(BaseModel):
        text: str

    async def execute(self) -> list[Outputs]:
        return [self.Outputs(text=item) for item in self.inputs.items.split(",")]


class Nothing(BaseNode):
    class Inputs(BaseModel):
        text: str

    async def execute(self) -> None:
        return None


class Prunes(BaseNode):
    async def execute(self) -> None:
        raise PruneSignal({"why": "not needed"})


class Requeues(BaseNode):
    async def execute(self) -> None:
        raise ReQueueAfterSignal(timedelta(seconds=5))


class Boom(Exception):
    pass


class Fails(BaseNode):
    async def execute(self) -> None:
        raise Boom("it broke")


class UsesSecret(BaseNode):
    class Outputs(BaseModel):
        length: str

    class Secrets(BaseModel):
        token: str

    async def execute(self) -> Outputs:
        return self.Outputs(length=str(len(self.secrets.token)))


class SyncNode(BaseNode):
    """A plain ``def execute``: records the thread it ran on."""

    threads: list[int] = []  # noqa: RUF012 - read by the test right after

    class Outputs(BaseModel):
        done: str

    def execute(self) -> Outputs:
        self.threads.append(threading.get_ident())
        return self.Outputs(done="yes")


class ReturnsDict(BaseNode):
    async def execute(self) -> Any:
        return {"text": "not a model"}


class IntInput(BaseNode):
    class Inputs(BaseModel):
        count: int

    async def execute(self) -> None:
        return None


class Later(Echo):
    """Re-queued for an hour on its first run, then done (per test: ``runs`` is cleared)."""

    runs: list[str] = []  # noqa: RUF012

    async def execute(self) -> Echo.Outputs:
        self.runs.append(self.inputs.text)
        if len(self.runs) == 1:
            raise ReQueueAfterSignal(timedelta(hours=1))
        return await super().execute()


class Flaky(Echo):
    """Fails its first run (retried by the graph's policy), then echoes."""

    runs: list[str] = []  # noqa: RUF012

    async def execute(self) -> Echo.Outputs:
        self.runs.append(self.inputs.text)
        if len(self.runs) == 1:
            raise ConnectionError("flaky")
        return await super().execute()


class Waits(BaseNode):
    """Waits for an event nobody sets: a node that can never finish."""

    class Inputs(BaseModel):
        text: str

    async def execute(self) -> None:
        await anyio.Event().wait()


class RealSleep(BaseNode):
    """Waits a little real time, which the virtual clock cannot bring."""

    class Inputs(BaseModel):
        text: str

    class Outputs(BaseModel):
        text: str

    async def execute(self) -> Outputs:
        await anyio.sleep(0.05)
        return self.Outputs(text=self.inputs.text)


# --- run_node ----------------------------------------------------------------------------------


async def test_run_node_returns_one_output_as_a_one_item_list() -> None:
    assert await run_node(Echo, {"text": "hi"}) == [{"text": "hi"}]


async def test_run_node_returns_a_list_of_outputs_one_per_item() -> None:
    outputs = await run_node(Spread, {"items": "a,b,c"})
    assert outputs == [{"text": "a"}, {"text": "b"}, {"text": "c"}]


async def test_run_node_returns_no_outputs_for_none() -> None:
    assert await run_node(Nothing, {"text": "x"}) == []


async def test_run_node_raises_the_prune_signal() -> None:
    with pytest.raises(PruneSignal) as caught:
        await run_node(Prunes)
    assert caught.value.data == {"why": "not needed"}


class PrunesWithAnObject(BaseNode):
    class Inputs(BaseModel):
        pass

    async def execute(self) -> None:
        raise PruneSignal({"when": object()})


class Quits(BaseNode):
    class Inputs(BaseModel):
        pass

    def execute(self) -> None:
        raise SystemExit(3)


async def test_run_node_refuses_a_prune_the_runtime_cannot_send() -> None:
    with pytest.raises(NodeContractError, match="PruneSignal with data that cannot be sent"):
        await run_node(PrunesWithAnObject)


async def test_run_node_raises_systemexit_as_raised() -> None:
    with pytest.raises(SystemExit) as caught:
        await run_node(Quits)
    assert caught.value.code == 3


async def test_run_node_raises_the_requeue_signal() -> None:
    with pytest.raises(ReQueueAfterSignal) as caught:
        await run_node(Requeues)
    assert caught.value.delay == timedelta(seconds=5)


async def test_run_node_raises_the_nodes_own_exception_with_its_traceback() -> None:
    with pytest.raises(Boom, match="it broke") as caught:
        await run_node(Fails)
    assert caught.traceback[-1].name == "execute"


async def test_run_node_refuses_invalid_inputs_with_the_runtimes_errored_text() -> None:
    with pytest.raises(NodeContractError, match=r"^Invalid inputs for node Echo: text: Field"):
        await run_node(Echo, {})


async def test_run_node_refuses_non_string_inputs_as_the_wire_would() -> None:
    with pytest.raises(NodeContractError, match="Invalid inputs for node Echo"):
        await run_node(Echo, {"text": 3})


async def test_run_node_passes_secrets_and_refuses_missing_ones() -> None:
    assert await run_node(UsesSecret, secrets={"token": "abcd"}) == [{"length": "4"}]
    with pytest.raises(NodeContractError, match="Invalid secrets for node UsesSecret: token"):
        await run_node(UsesSecret)


async def test_run_node_runs_a_sync_node_in_a_worker_thread() -> None:
    SyncNode.threads.clear()
    assert await run_node(SyncNode) == [{"done": "yes"}]
    assert SyncNode.threads
    assert SyncNode.threads[0] != threading.get_ident()


async def test_run_node_refuses_a_result_the_runtime_would_refuse() -> None:
    with pytest.raises(NodeContractError, match=r"execute\(\) must return ReturnsDict.Outputs"):
        await run_node(ReturnsDict)


async def test_run_node_checks_the_class_as_the_runtime_does() -> None:
    with pytest.raises(NodeValidationError, match="count' must be of type str"):
        await run_node(IntInput, {"count": "1"})


# --- ExoEnv: runs --------------------------------------------------------------------------------

# Spread fans out one Echo state per comma-separated item of its input.
FAN = [
    graph_node("spread", Spread, inputs={"items": "x"}, next_nodes=["echo"]),
    graph_node("echo", Echo, inputs={"text": "${{ spread.outputs.text }}"}),
]


async def test_env_runs_a_fan_out_graph_and_reads_outputs_by_identifier(exo_env: ExoEnv) -> None:
    await exo_env.start_runtime(Spread, Echo)
    await exo_env.upsert_graph("fan", FAN)
    run = await exo_env.run("fan", {"items": "a,b,c"})
    assert_run_succeeded(run)
    assert_outputs(run, "echo", [{"text": "c"}, {"text": "a"}, {"text": "b"}])
    assert exo_env.outputs(run.run_id, "spread") == [{"text": "a"}, {"text": "b"}, {"text": "c"}]
    assert len(run.states_of("echo")) == 3


async def test_env_delays_cost_virtual_time_only(exo_env: ExoEnv) -> None:
    Later.runs.clear()
    Flaky.runs.clear()
    # The runtime polls once per poll_interval of virtual time: fewer polls through the hour.
    await exo_env.start_runtime(Later, Flaky, poll_interval=60)
    graph = [
        graph_node("later", Later, inputs={"text": "t"}, next_nodes=["flaky"]),
        graph_node("flaky", Flaky, inputs={"text": "${{ later.outputs.text }}"}),
    ]
    policy = RetryPolicyModel(max_retries=1, backoff_factor=600_000)  # a 10-minute retry delay
    await exo_env.upsert_graph("slow", graph, retry_policy=policy)
    started = exo_env.clock.now()
    run = await exo_env.run("slow")
    assert_run_succeeded(run)
    assert run.summary["retried_count"] == 1
    assert run.output("flaky") == {"text": "t"}
    assert exo_env.clock.now() - started >= 3600 + 600


async def test_env_runs_on_a_real_clock() -> None:
    async with ExoEnv(clock=SystemClock()) as env:
        await env.start_runtime(Echo)
        await env.upsert_graph("echo", [graph_node("echo", Echo, inputs={"text": "x"})])
        run = await env.run("echo", {"text": "real"})
    assert run.output("echo") == {"text": "real"}


async def test_env_stops_its_runtimes_at_exit() -> None:
    async with ExoEnv() as env:
        runtime = await env.start_runtime(Echo)
        assert runtime.is_running
    assert not runtime.is_running


async def test_env_stop_runtime_waits_until_it_has_stopped(exo_env: ExoEnv) -> None:
    runtime = await exo_env.start_runtime(Echo)
    await exo_env.stop_runtime(runtime)
    assert not runtime.is_running


async def test_env_runtimes_call_the_fakes_app_without_async_client(
    exo_env: ExoEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runtime calls an httpx.ASGITransport's app directly (exo_ref._calls.AsgiSender) and
    # sends through any other transport with httpx.AsyncClient, at about three times the CPU
    # per state: the environment's claim tracking must not push its runtimes off that path.
    sent: list[str] = []
    original = httpx.AsyncClient.send

    async def counting(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        sent.append(request.url.path)
        return await original(self, request, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", counting)
    await exo_env.start_runtime(Spread, Echo)
    await exo_env.upsert_graph("fan", FAN)
    run = await exo_env.run("fan", {"items": "a,b"})
    assert_outputs(run, "echo", [{"text": "a"}, {"text": "b"}])
    received = [r.path for r in exo_env.sm.requests]
    assert any(path.endswith("/nodes/") for path in received)
    assert any(path.endswith("/states/enqueue") for path in received)
    assert sum(path.endswith("/executed") for path in received) == 3  # spread, echo x2
    assert sent  # the environment's own client (graphs, triggers) does use AsyncClient...
    assert [path for path in sent if "/graph/" not in path] == []  # ...its runtimes never
    assert type(exo_env.transport) is httpx.ASGITransport  # and runtimes built on it neither


async def test_env_wires_the_runtime_itself(exo_env: ExoEnv) -> None:
    with pytest.raises(TypeError, match="wires clock, transport itself"):
        await exo_env.start_runtime(Echo, transport=exo_env.sm.transport, clock=exo_env.clock)


async def test_env_outside_its_context_says_how_to_use_it() -> None:
    env = ExoEnv()
    with pytest.raises(RuntimeError, match="async with ExoEnv"):
        await env.start_runtime(Echo)


# --- ExoEnv: runs that cannot finish -------------------------------------------------------------


async def _stuck_on_unserved_echo(env: ExoEnv) -> RunStuckError:
    """A graph whose second node's runtime stopped after registering it (for the upsert)."""
    registrar = await env.start_runtime(Echo, name="registrar")
    await env.start_runtime(Spread, name="spreader")
    await env.upsert_graph("fan", FAN)
    await env.stop_runtime(registrar)
    with pytest.raises(RunStuckError) as caught:
        await env.run("fan", {"items": "a,b"})
    return caught.value


async def test_a_run_nobody_serves_fails_at_once_with_what_blocks_it(exo_env: ExoEnv) -> None:
    error = await _stuck_on_unserved_echo(exo_env)
    text = str(error)
    assert "cannot finish: every task is waiting" in text
    assert (
        "echo [Echo] CREATED, 2 states" in text
    )
    assert (
        "no running runtime serves node 'Echo' in namespace 'exo-test' "
        "(runtime 'registrar' served it and has stopped)" in text
    )
    assert "start one with `await env.start_runtime(Echo)`" in text
    assert error.result.status == "PENDING"
    assert [s["status"] for s in error.result.states_of("echo")] == ["CREATED", "CREATED"]
    assert len(error.reasons) == 1


async def test_a_stuck_message_shows_every_state(exo_env: ExoEnv) -> None:
    error = await _stuck_on_unserved_echo(exo_env)
    table = str(error).split("\n")
    assert any("spread" in line and "SUCCESS" in line and '{"text": "a"}' in line for line in table)
    assert sum(line.startswith("  echo ") and "CREATED" in line for line in table) == 2


class Prepare(Echo):
    """``Echo`` registered under a second name, so a graph can hold both."""


class Merge(BaseNode):
    class Inputs(BaseModel):
        text: str

    async def execute(self) -> None:
        return None


async def test_a_stuck_message_names_the_unites_node_that_waits(exo_env: ExoEnv) -> None:
    registrar = await exo_env.start_runtime(Echo, name="registrar")
    await exo_env.start_runtime(Prepare, Merge)
    graph = [
        graph_node("prepare", Prepare, inputs={"text": "x"}, next_nodes=["work"]),
        graph_node("work", Echo, inputs={"text": "${{ prepare.outputs.text }}"},
                   next_nodes=["merge"]),
        graph_node("merge", Merge, inputs={"text": "${{ prepare.outputs.text }}"},
                   unites="prepare"),
    ]
    await exo_env.upsert_graph("fan-in", graph)
    await exo_env.stop_runtime(registrar)
    with pytest.raises(RunStuckError) as caught:
        await exo_env.run("fan-in")
    assert (
        "note: 'merge' (unites 'prepare', ALL_SUCCESS) is created only once every state "
        "descending from 'prepare' has finished successfully" in str(caught.value)
    )


@pytest.mark.exo_env(stuck_grace=0)
async def test_an_execute_that_never_returns_fails_after_the_grace(exo_env: ExoEnv) -> None:
    await exo_env.start_runtime(Waits, name="waiter")
    await exo_env.upsert_graph("wait", [graph_node("wait", Waits, inputs={"text": "x"})])
    with pytest.raises(RunStuckError) as caught:
        await exo_env.run("wait")
    text = str(caught.value)
    assert "nothing changed for 0 s of real time" in text
    assert "claimed by runtime 'waiter', and Waits.execute() has not returned" in text


@pytest.mark.exo_env(stuck_grace=30)
async def test_an_execute_waiting_on_real_time_is_not_stuck(exo_env: ExoEnv) -> None:
    await exo_env.start_runtime(RealSleep)
    await exo_env.upsert_graph("nap", [graph_node("nap", RealSleep, inputs={"text": "x"})])
    run = await exo_env.run("nap")
    assert run.output("nap") == {"text": "x"}


@pytest.mark.exo_env(stuck_grace=0)
async def test_a_state_claimed_outside_the_environment_is_named(exo_env: ExoEnv) -> None:
    registrar = await exo_env.start_runtime(Echo)
    await exo_env.upsert_graph("echo", [graph_node("echo", Echo, inputs={"text": "x"})])
    await exo_env.stop_runtime(registrar)
    run_id = await exo_env.trigger("echo")
    async with httpx.AsyncClient(
        transport=exo_env.transport, base_url=exo_env.uri,
        headers={"x-api-key": exo_env.api_key},
    ) as http:
        response = await http.post(
            f"/v0/namespace/{exo_env.namespace}/states/enqueue",
            content=json.dumps({"nodes": ["Echo"], "batch_size": 1}),
        )
    assert response.json()["count"] == 1
    with pytest.raises(RunStuckError, match="claimed by a runtime outside the environment"):
        await exo_env.wait_for_run(run_id)


async def test_a_clock_nobody_moves_ends_the_wait_at_its_timeout() -> None:
    Later.runs.clear()  # re-queued for an hour that never comes, or never claimed at all
    async with ExoEnv(clock=ManualClock(), timeout=0.2) as env:
        await env.start_runtime(Later)
        await env.upsert_graph("later", [graph_node("later", Later, inputs={"text": "x"})])
        with pytest.raises(RunStuckError, match=r"still PENDING after 0.2 s of real time"):
            await env.run("later")


class CrashingRuntime(Runtime):
    """Registers, then dies five (virtual) seconds later: as a runtime bug would."""

    async def run(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await self._clock.sleep(5)
        raise OSError("disk on fire")


async def test_a_runtime_that_dies_fails_the_wait_at_once_and_the_exit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = ExoEnv()
    await env.__aenter__()
    try:
        await env.start_runtime(Waits)
        await env.upsert_graph("wait", [graph_node("wait", Waits, inputs={"text": "x"})])
        monkeypatch.setattr("exo_ref.testing.Runtime", CrashingRuntime)
        await env.start_runtime(Echo, name="doomed")
        with pytest.raises(
            RunStuckError, match="runtime 'doomed' stopped with an error: OSError: disk on fire"
        ):
            await env.run("wait")
    except BaseException as error:
        await env.__aexit__(type(error), error, error.__traceback__)
        raise
    with pytest.raises(OSError, match="disk on fire"):  # raised again when the env exits
        await env.__aexit__(None, None, None)


async def test_an_unknown_run_is_a_lookup_error(exo_env: ExoEnv) -> None:
    with pytest.raises(LookupError, match="no run 'nope'"):
        await exo_env.wait_for_run("nope")


# --- RunResult and the assertion helpers (no environment needed) ---------------------------------


def _result(status: str, *states: dict[str, Any]) -> RunResult:
    summary: Any = run_item("r1", status, total=len(states))
    return RunResult(run_id="r1", summary=summary, states=list(states))


def _state(identifier: str, status: str, **fields: Any) -> dict[str, Any]:
    return {"id": f"id-{identifier}", "identifier": identifier, "node_name": "N",
            "status": status, "retry_count": 0, "outputs": {}, "error": None, "data": {},
            **fields}


def test_assert_run_succeeded_prints_the_states() -> None:
    run = _result("FAILED", _state("a", "ERRORED", error="disk full"))
    with pytest.raises(AssertionError, match="expected run r1 to succeed") as caught:
        assert_run_succeeded(run)
    assert "ERRORED" in str(caught.value)
    assert "error: disk full" in str(caught.value)


def test_assert_run_failed_checks_the_error_text() -> None:
    run = _result("FAILED", _state("a", "ERRORED", error="disk full"))
    assert_run_failed(run, error="disk")
    with pytest.raises(AssertionError, match="no ERRORED state's error contains 'quota'"):
        assert_run_failed(run, error="quota")
    with pytest.raises(AssertionError, match="expected run r1 to fail"):
        assert_run_failed(_result("SUCCESS", _state("a", "SUCCESS")))


def test_assert_run_failed_ignores_the_errors_of_retried_attempts() -> None:
    run = _result("FAILED", _state("a", "RETRY_CREATED", error="first failure"),
                  _state("a", "ERRORED", error="second failure"))
    assert_run_failed(run, error="second")
    with pytest.raises(AssertionError, match="no ERRORED state's error contains 'first'"):
        assert_run_failed(run, error="first")


def test_assert_outputs_compares_in_any_order_unless_told() -> None:
    run = _result("SUCCESS", _state("a", "SUCCESS", outputs={"x": "1"}),
                  _state("a", "SUCCESS", outputs={"x": "2"}))
    assert_outputs(run, "a", [{"x": "2"}, {"x": "1"}])
    with pytest.raises(AssertionError, match="got      \\[\\{'x': '1'\\}, \\{'x': '2'\\}\\]"):
        assert_outputs(run, "a", [{"x": "2"}, {"x": "1"}], ordered=True)


def test_outputs_of_an_unknown_identifier_list_the_known_ones() -> None:
    run = _result("SUCCESS", _state("a", "SUCCESS"))
    with pytest.raises(LookupError, match=r"no state with identifier 'b'.*identifiers \['a'\]"):
        run.outputs("b")


def test_output_wants_exactly_one_success_state() -> None:
    run = _result("SUCCESS", _state("a", "RETRY_CREATED", error="flaky"),
                  _state("a", "SUCCESS", outputs={"x": "1"}))
    assert run.output("a") == {"x": "1"}
    with pytest.raises(AssertionError, match="found 2"):
        _result("SUCCESS", _state("a", "SUCCESS"), _state("a", "SUCCESS")).output("a")


def test_the_public_names_resolve() -> None:
    import exo_ref.testing

    for name in exo_ref.testing.__all__:
        assert getattr(exo_ref.testing, name) is not None, name
    assert issubclass(RunStuckError, AssertionError)
    assert issubclass(NodeContractError, ValueError)


# --- a runtime or client pointed at the in-process fake without its transport -------------------


def test_the_in_process_host_is_the_fakes() -> None:
    assert httpx.URL(fake_state_manager.DEFAULT_URI).host == IN_PROCESS_HOST


def test_a_runtime_on_the_fakes_uri_without_its_transport_is_refused() -> None:
    sm = fake_state_manager.FakeStateManager()
    with pytest.raises(ConfigurationError, match=r"pass transport=sm\.transport"):
        Runtime("ns", "rt", [Echo], sm.uri, sm.api_key)
    Runtime("ns", "rt", [Echo], sm.uri, sm.api_key, transport=sm.transport)
    Runtime("ns", "rt", [Echo], "http://localhost:8000", sm.api_key)


async def test_a_client_on_the_fakes_uri_without_its_transport_is_refused() -> None:
    uri = fake_state_manager.DEFAULT_URI
    settings = RuntimeSettings(namespace="ns", name="rt", state_manager_uri=uri, key="k")
    with pytest.raises(ConfigurationError, match=r"pass transport=sm\.transport"):
        StateManagerClient(settings, transport=None, clock=SystemClock(), rng=random.Random(0))

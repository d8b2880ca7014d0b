"""Failures, retries and signals, reported by the upstream runtime to the fake over loopback."""

from __future__ import annotations

from exospherehost import RetryPolicyModel, RetryStrategyEnum, StateManager

from tests.upstream._nodes import ATTEMPTS, EXECUTION_TIMES, Echo, Flaky, Gate, Later
from tests.upstream._support import (
    VALIDATION_POLL,
    FakeReader,
    by_identifier,
    graph_node,
    upstream_runtime,
)
from tests.upstream.conftest import API_KEY


async def test_retries_exhausted_and_recovered(
    fake_uri: str, namespace: str, reader: FakeReader
) -> None:
    """Errored states are retried per the graph's policy (contract §5).

    With ``max_retries=2`` a node that always fails is attempted three times and the run
    FAILS; one that fails twice then succeeds makes the run SUCCEED on its third attempt.
    """
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    policy = RetryPolicyModel(max_retries=2, strategy=RetryStrategyEnum.FIXED, backoff_factor=20)
    nodes = [graph_node(namespace, "Flaky", "flaky", inputs={"key": "k", "failures": "0"})]
    doomed, lucky = f"{namespace}-doomed", f"{namespace}-lucky"
    with upstream_runtime(namespace, fake_uri, API_KEY, [Flaky]):
        await reader.wait_registered({"Flaky"})
        await sm.upsert_graph(
            "flaky", nodes, secrets={}, retry_policy=policy, polling_interval=VALIDATION_POLL
        )
        exhausted = await sm.trigger("flaky", inputs={"key": doomed, "failures": "99"})
        recovered = await sm.trigger("flaky", inputs={"key": lucky, "failures": "2"})
        exhausted_run = await reader.wait_finished(exhausted["run_id"])
        recovered_run = await reader.wait_finished(recovered["run_id"])
        exhausted_states = await reader.states(exhausted["run_id"])
        recovered_states = await reader.states(recovered["run_id"])

    assert ATTEMPTS.count(doomed) == 3
    assert exhausted_run["status"] == "FAILED"
    assert (exhausted_run["errored_count"], exhausted_run["retried_count"]) == (1, 2)
    assert exhausted_run["total_count"] == 3
    [last] = [state for state in exhausted_states if state["status"] == "ERRORED"]
    assert last["error"] == "attempt 3 failed"
    assert sorted(
        state["error"] for state in exhausted_states if state["status"] == "RETRY_CREATED"
    ) == ["attempt 1 failed", "attempt 2 failed"]

    assert ATTEMPTS.count(lucky) == 3
    assert recovered_run["status"] == "SUCCESS"
    assert (recovered_run["success_count"], recovered_run["retried_count"]) == (1, 2)
    assert recovered_run["errored_count"] == 0
    [success] = [state for state in recovered_states if state["status"] == "SUCCESS"]
    assert success["outputs"] == {"attempts": "3"}


async def test_prune_ends_the_branch(fake_uri: str, namespace: str, reader: FakeReader) -> None:
    """A PruneSignal marks the state PRUNED, creates no children, and counts as success (§6.1)."""
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    nodes = [
        graph_node(namespace, "Gate", "gate", inputs={"verdict": "go"}, next_nodes=["after"]),
        graph_node(namespace, "Echo", "after", inputs={"value": "${{ gate.outputs.verdict }}"}),
    ]
    with upstream_runtime(namespace, fake_uri, API_KEY, [Gate, Echo]):
        await reader.wait_registered({"Gate", "Echo"})
        await sm.upsert_graph("gated", nodes, secrets={}, polling_interval=VALIDATION_POLL)
        stopped = await sm.trigger("gated", inputs={"verdict": "stop"})
        passed = await sm.trigger("gated", inputs={"verdict": "go"})
        stopped_run = await reader.wait_finished(stopped["run_id"])
        passed_run = await reader.wait_finished(passed["run_id"])
        stopped_states = await reader.states(stopped["run_id"])
        passed_states = await reader.states(passed["run_id"])

    assert stopped_run["status"] == "SUCCESS"
    assert (stopped_run["total_count"], stopped_run["success_count"]) == (1, 1)
    assert [state["status"] for state in stopped_states] == ["PRUNED"]
    assert passed_run["status"] == "SUCCESS"
    assert by_identifier(passed_states, "after")[0]["outputs"] == {"value": "go"}


async def test_re_enqueue_after_runs_the_same_state_again_later(
    fake_uri: str, namespace: str, reader: FakeReader
) -> None:
    """ReQueueAfterSignal resets the same state to CREATED after the delay (§6.2)."""
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    key = f"{namespace}-later"
    delay_ms = 150
    nodes = [graph_node(namespace, "Later", "later", inputs={"key": "k", "delay_ms": "1"})]
    with upstream_runtime(namespace, fake_uri, API_KEY, [Later]):
        await reader.wait_registered({"Later"})
        await sm.upsert_graph("later", nodes, secrets={}, polling_interval=VALIDATION_POLL)
        triggered = await sm.trigger("later", inputs={"key": key, "delay_ms": str(delay_ms)})
        run = await reader.wait_finished(triggered["run_id"])
        [state] = await reader.states(triggered["run_id"])

    assert ATTEMPTS.count(key) == 2
    assert run["status"] == "SUCCESS"
    assert (run["total_count"], run["retried_count"], run["errored_count"]) == (1, 0, 0)
    assert state["outputs"] == {"attempts": "2"}
    first, second = EXECUTION_TIMES[key]
    # The state was not claimable again before its enqueue_after (a small allowance for the
    # server and this process reading different clocks).
    assert second - first >= (delay_ms - 20) / 1000

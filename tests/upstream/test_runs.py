"""Successful graph runs driven by the upstream SDK against the fake over loopback.

Each test starts an upstream ``Runtime`` (its own loop, in a thread), upserts a graph and triggers
runs with the upstream ``StateManager``, then reads the outcome through the fake's REST API.
"""

from __future__ import annotations

import hashlib

from exospherehost import StateManager, UnitesModel

from tests.upstream._nodes import (
    ATTEMPTS,
    FanOutNode,
    Merger,
    Shout,
    Source,
    Splitter,
    UsesSecret,
    Worker,
    Wrap,
)
from tests.upstream._support import (
    VALIDATION_POLL,
    FakeReader,
    by_identifier,
    graph_node,
    upstream_runtime,
)
from tests.upstream.conftest import API_KEY


async def test_single_node_fan_out_of_ten_succeeds(
    fake_uri: str, namespace: str, reader: FakeReader
) -> None:
    """Contract §10 test_fan_out: one state returning ten outputs ends as ten SUCCESS states."""
    health = await reader.health()
    assert health.status_code == 200
    assert health.json()["message"] == "OK"
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    with upstream_runtime(namespace, fake_uri, API_KEY, [FanOutNode]):
        await reader.wait_registered({"FanOutNode"})
        graph = await sm.upsert_graph(
            "test_graph",
            [graph_node(namespace, "FanOutNode", "node1", inputs={"message": "Hello, world!"})],
            secrets={},
            polling_interval=VALIDATION_POLL,
        )
        assert graph["validation_status"] == "VALID"
        triggered = await sm.trigger("test_graph", inputs={})
        run = await reader.wait_finished(triggered["run_id"])
        states = await reader.states(triggered["run_id"])

    assert run["graph_name"] == "test_graph"
    assert run["status"] == "SUCCESS"
    assert (run["success_count"], run["pending_count"], run["total_count"]) == (10, 0, 10)
    assert (run["errored_count"], run["retried_count"]) == (0, 0)
    assert sorted(state["outputs"]["count"] for state in states) == [str(i) for i in range(10)]
    assert {state["status"] for state in states} == {"SUCCESS"}


async def test_chain_substitutes_output_placeholders(
    fake_uri: str, namespace: str, reader: FakeReader
) -> None:
    """``${{ id.outputs.f }}`` with and without spaces, inside literals (contract §4.2, §3.5)."""
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    nodes = [
        graph_node(namespace, "Shout", "shout", inputs={"text": "initial"}, next_nodes=["wrap"]),
        graph_node(
            namespace,
            "Wrap",
            "wrap",
            inputs={"left": "<${{ shout.outputs.loud }}>", "right": "${{shout.outputs.loud}}"},
        ),
    ]
    with upstream_runtime(namespace, fake_uri, API_KEY, [Shout, Wrap]):
        await reader.wait_registered({"Shout", "Wrap"})
        await sm.upsert_graph("chain", nodes, secrets={}, polling_interval=VALIDATION_POLL)
        # Trigger inputs override the root's template inputs by key (contract §4.6 step 2).
        triggered = await sm.trigger("chain", inputs={"text": "hello", "ignored": "x"})
        run = await reader.wait_finished(triggered["run_id"])
        states = await reader.states(triggered["run_id"])

    assert run["status"] == "SUCCESS"
    assert run["total_count"] == 2
    [shout] = by_identifier(states, "shout")
    [wrap] = by_identifier(states, "wrap")
    assert shout["inputs"] == {"text": "hello"}
    assert wrap["inputs"] == {"left": "<HELLO>", "right": "HELLO"}
    assert wrap["outputs"] == {"joined": "<HELLO>|HELLO"}
    assert wrap["parents"] == {"shout": shout["id"]}


async def test_store_values_and_defaults_reach_inputs(
    stored_graph: StateManager, reader: FakeReader
) -> None:
    """Trigger store first, then ``default_values`` (contract §4.6 step 3, §3.5 step 3c)."""
    defaulted = await stored_graph.trigger("stored", store={"req": "r1"})
    given = await stored_graph.trigger("stored", store={"req": "r2", "opt": "mine"})
    runs = [await reader.wait_finished(t["run_id"]) for t in (defaulted, given)]
    first_states = await reader.states(defaulted["run_id"])
    second_states = await reader.states(given["run_id"])

    assert [run["status"] for run in runs] == ["SUCCESS", "SUCCESS"]
    assert by_identifier(first_states, "first")[0]["inputs"] == {"value": "fallback"}
    assert by_identifier(first_states, "then")[0]["outputs"] == {"value": "fallback/r1/fallback"}
    assert by_identifier(second_states, "first")[0]["inputs"] == {"value": "mine"}
    assert by_identifier(second_states, "then")[0]["outputs"] == {"value": "mine/r2/mine"}


async def test_secrets_reach_the_node(fake_uri: str, namespace: str, reader: FakeReader) -> None:
    """The runtime GETs the state's secrets and validates them into ``Secrets`` (§2.13, §8.6)."""
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    token = "s3cr3t-token-value"
    nodes = [graph_node(namespace, "UsesSecret", "secretive", inputs={"label": "x"})]
    with upstream_runtime(namespace, fake_uri, API_KEY, [UsesSecret]):
        await reader.wait_registered({"UsesSecret"})
        await sm.upsert_graph(
            "secretive",
            nodes,
            secrets={"token": token, "unrelated": "other"},
            polling_interval=VALIDATION_POLL,
        )
        triggered = await sm.trigger("secretive")
        run = await reader.wait_finished(triggered["run_id"])
        [state] = await reader.states(triggered["run_id"])

    assert run["status"] == "SUCCESS"
    assert state["outputs"] == {"digest": hashlib.sha256(token.encode()).hexdigest()}


async def test_fan_in_through_unites_runs_once_after_all_branches(
    fake_uri: str, namespace: str, reader: FakeReader
) -> None:
    """source -> splitter (fan-out 3) -> worker -> merger(unites source) (contract §3.5 step 4).

    The merger unites the *source*, an ancestor of the fan-out, so it is created exactly once,
    only after every descendant of the source state succeeded.
    """
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    topic = namespace  # unique per test, so the shared attempt log cannot mix runs
    nodes = [
        graph_node(namespace, "Source", "source", inputs={"topic": "t"}, next_nodes=["splitter"]),
        graph_node(
            namespace,
            "Splitter",
            "splitter",
            inputs={"tag": "${{ source.outputs.tag }}"},
            next_nodes=["worker"],
        ),
        graph_node(
            namespace,
            "Worker",
            "worker",
            inputs={"part": "${{ splitter.outputs.part }}"},
            next_nodes=["merger"],
        ),
        graph_node(
            namespace,
            "Merger",
            "merger",
            inputs={"tag": "${{ source.outputs.tag }}"},
            unites=UnitesModel(identifier="source"),
        ),
    ]
    with upstream_runtime(namespace, fake_uri, API_KEY, [Source, Splitter, Worker, Merger]):
        await reader.wait_registered({"Source", "Splitter", "Worker", "Merger"})
        await sm.upsert_graph("fan_in", nodes, secrets={}, polling_interval=VALIDATION_POLL)
        triggered = await sm.trigger("fan_in", inputs={"topic": topic})
        run = await reader.wait_finished(triggered["run_id"])
        states = await reader.states(triggered["run_id"])

    tag = f"tag-{topic}"
    assert run["status"] == "SUCCESS"
    assert (run["total_count"], run["success_count"]) == (8, 8)
    workers = by_identifier(states, "worker")
    assert sorted(state["outputs"]["done"] for state in workers) == [
        f"{tag}-{i}!" for i in range(3)
    ]
    [merger] = by_identifier(states, "merger")
    [source] = by_identifier(states, "source")
    assert merger["inputs"] == {"tag": tag}
    assert merger["outputs"] == {"summary": f"merged {tag}"}
    assert merger["parents"] == {"source": source["id"]}
    # The merger ran once, after all three workers.
    log = [key for key in ATTEMPTS.log if tag in key]
    assert log.count(f"merger:{tag}") == 1
    assert log[-1] == f"merger:{tag}"
    assert sorted(log[:-1]) == [f"worker:{tag}-{i}" for i in range(3)]

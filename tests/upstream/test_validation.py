"""Graphs and triggers the fake refuses, as the upstream SDK reports them (§2.3, §2.6, §4.3-4.4)."""

from __future__ import annotations

import pytest
from exospherehost import StateManager

from tests.upstream._nodes import Echo, Shout, UsesSecret
from tests.upstream._support import (
    VALIDATION_POLL,
    FakeReader,
    graph_node,
    upstream_runtime,
)
from tests.upstream.conftest import API_KEY


async def test_missing_store_keys_are_refused_with_400(
    stored_graph: StateManager, reader: FakeReader
) -> None:
    """Required store keys must come with the trigger; defaults do not count (§4.6 step 4)."""
    with pytest.raises(Exception, match=r"Failed to trigger state: 400 .*Missing store keys"):
        await stored_graph.trigger("stored", store={"opt": "given"})
    with pytest.raises(Exception, match=r"Failed to trigger state: 400 .*Missing store keys"):
        await stored_graph.trigger("stored")

    assert await reader.runs() == [], "a refused trigger must not create a run"


async def test_two_roots_are_refused_and_the_stored_graph_survives(
    fake_uri: str, namespace: str, reader: FakeReader
) -> None:
    """Contract §10 test_upsert_graph second case: valid -> two roots (400) -> valid."""
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    one = graph_node(namespace, "Shout", "node1", inputs={"text": "a"})
    two = graph_node(namespace, "Echo", "node2", inputs={"value": "b"})
    with upstream_runtime(namespace, fake_uri, API_KEY, [Shout, Echo]):
        await reader.wait_registered({"Shout", "Echo"})
        first = await sm.upsert_graph("g", [one], secrets={}, polling_interval=VALIDATION_POLL)
        assert first["validation_status"] == "VALID"

        with pytest.raises(Exception, match=r"Failed to upsert graph: 400 .*exactly one root node"):
            await sm.upsert_graph("g", [one, two], secrets={}, polling_interval=VALIDATION_POLL)
        stored = await sm.get_graph("g")
        assert [node["identifier"] for node in stored["nodes"]] == ["node1"]
        assert stored["validation_status"] == "VALID"

        linked = one.model_copy(update={"next_nodes": ["node2"]})
        final = await sm.upsert_graph(
            "g", [linked, two], secrets={}, polling_interval=VALIDATION_POLL
        )
    assert final["validation_status"] == "VALID"
    assert [node["identifier"] for node in final["nodes"]] == ["node1", "node2"]


async def test_unregistered_node_makes_the_graph_invalid(fake_uri: str, namespace: str) -> None:
    """Background verification marks a graph naming an unregistered node INVALID (§4.4)."""
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    nodes = [graph_node(namespace, "Ghost", "ghost", inputs={})]
    expected = f"Node Ghost in namespace {namespace} does not exist."
    with pytest.raises(Exception, match=r"Graph validation failed: INVALID") as refused:
        await sm.upsert_graph("haunted", nodes, secrets={}, polling_interval=VALIDATION_POLL)
    assert expected in str(refused.value)

    graph = await sm.get_graph("haunted")
    assert graph["validation_status"] == "INVALID"
    # Upstream names the unregistered node twice (once per check group, §4.4); the first
    # message is the documented one.
    assert graph["validation_errors"][0] == expected
    assert all("Node Ghost in namespace" in error for error in graph["validation_errors"])
    with pytest.raises(
        Exception, match=r"Failed to trigger state: 400 .*Graph template is not valid"
    ):
        await sm.trigger("haunted")


async def test_missing_graph_secret_makes_the_graph_invalid(
    fake_uri: str, namespace: str, reader: FakeReader
) -> None:
    """A secret a registered node declares must be in the graph's secrets (§4.4)."""
    sm = StateManager(namespace, state_manager_uri=fake_uri, key=API_KEY)
    nodes = [graph_node(namespace, "UsesSecret", "secretive", inputs={"label": "x"})]
    with upstream_runtime(namespace, fake_uri, API_KEY, [UsesSecret]):
        await reader.wait_registered({"UsesSecret"})
        with pytest.raises(Exception, match=r"Graph validation failed: INVALID") as refused:
            await sm.upsert_graph(
                "secretive", nodes, secrets={"other": "v"}, polling_interval=VALIDATION_POLL
            )
    assert "Secret token is required but not present in the graph template" in str(refused.value)

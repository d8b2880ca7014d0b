"""HTTP mapping of the state endpoints and read endpoints (contract §2.7-§2.16, §3, §5-§7)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import graph_node

from ..http_support import (
    PREFIX,
    START_MS,
    STATUS_ORDER,
    claim,
    executed,
    ok,
    registration,
    running,
    setup_graph,
    trigger,
)

BAD_IDS = ["not-an-id", "0" * 24]


async def chain(client: httpx.AsyncClient, **extra: Any) -> None:
    """Graph a -> b: A outputs ``n``, B takes ``n`` from A's outputs."""
    await setup_graph(
        client,
        [registration("A", outputs=("n",)), registration("B", ("n",), ("m",))],
        [graph_node("a", "A", next_nodes=["b"]), graph_node("b", "B", {"n": "${{ a.outputs.n }}"})],
        **extra,
    )


async def test_enqueue_claims_each_state_once_and_only_in_its_namespace() -> None:
    async with running() as (_, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        for _ in range(3):
            await trigger(client)
        empty = await ok(
            client.post(
                "/v0/namespace/other/states/enqueue", json={"nodes": ["A"], "batch_size": 10}
            )
        )
        assert empty == {"count": 0, "namespace": "other", "status": "QUEUED", "states": []}
        assert await claim(client, "A", batch_size=0) == []
        assert await claim(client) == []
        first = await claim(client, "A", batch_size=2)
        second = await claim(client, "A", batch_size=2)
        assert (len(first), len(second)) == (2, 1)
        assert {s["state_id"] for s in first}.isdisjoint(s["state_id"] for s in second)
        assert set(first[0]) == {"state_id", "node_name", "identifier", "inputs", "created_at"}
        assert first[0]["created_at"] == "2026-01-01T00:00:00"


async def test_enqueue_requires_both_fields() -> None:
    async with running() as (_, client):
        response = await client.post(f"{PREFIX}/states/enqueue", json={"nodes": ["A"]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "batch_size"]


async def test_fan_out_end_to_end_creates_one_child_per_output() -> None:
    async with running() as (sm, client):
        await chain(client)
        run_id = await trigger(client)
        (root,) = await claim(client, "A")
        await executed(client, root["state_id"], [{"n": str(i)} for i in range(3)])
        children = await claim(client, "B")
        assert sorted(c["inputs"]["n"] for c in children) == ["0", "1", "2"]
        for child in children:
            await executed(client, child["state_id"], [{"m": "done"}])
        summary = await sm.wait_for_run(run_id)
        assert summary["status"] == "SUCCESS"
        assert (summary["success_count"], summary["total_count"]) == (6, 6)
        graph = await ok(client.get(f"{PREFIX}/states/run/{run_id}/graph"))
        assert graph["graph_name"] == "g"
        assert (graph["node_count"], graph["edge_count"]) == (6, 3)
        assert len(graph["root_states"]) == 3  # the original A plus 2 extra fan-out states
        assert graph["execution_summary"]["SUCCESS"] == 6
        assert set(graph["nodes"][0]) == {"id", "node_name", "identifier", "status", "error"}
        assert all(e["source"] == root["state_id"] for e in graph["edges"][:1])


async def test_executed_errors() -> None:
    async with running() as (_, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        await trigger(client)
        for bad in BAD_IDS:
            response = await client.post(f"{PREFIX}/state/{bad}/executed", json={"outputs": []})
            assert (response.status_code, response.json()) == (404, {"detail": "State not found"})
        (state,) = await claim(client, "A")
        response = await client.post(
            f"{PREFIX}/state/{state['state_id']}/executed", json={"outputs": [1]}
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["body", "outputs", 0]
        await executed(client, state["state_id"], [])
        response = await client.post(
            f"{PREFIX}/state/{state['state_id']}/executed", json={"outputs": []}
        )
        assert (response.status_code, response.json()) == (400, {"detail": "State is not queued"})


async def test_errored_retries_after_the_policy_delay_then_gives_up() -> None:
    policy = {"max_retries": 1, "strategy": "FIXED", "backoff_factor": 1500}
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")], retry_policy=policy)
        run_id = await trigger(client)
        (state,) = await claim(client, "A")
        url = f"{PREFIX}/state/{state['state_id']}/errored"
        assert await ok(client.post(url, json={"error": "boom"})) == {
            "status": "ERRORED",
            "retry_created": True,
        }
        response = await client.post(url, json={"error": "again"})
        assert (response.status_code, response.json()) == (
            400,
            {"detail": "State is not queued or executed"},
        )
        retry = [s for s in sm.states(run_id) if s["retry_count"] == 1]
        assert [s["enqueue_after"] for s in retry] == [START_MS + 1500]
        assert await claim(client, "A") == []
        await sm.clock.sleep(1.5)
        (again,) = await claim(client, "A")
        assert await ok(
            client.post(f"{PREFIX}/state/{again['state_id']}/errored", json={"error": "final"})
        ) == {"status": "ERRORED", "retry_created": False}
        summary = sm.run_summary(run_id)
        assert (summary["status"], summary["retried_count"], summary["errored_count"]) == (
            "FAILED",
            1,
            1,
        )


async def test_errored_on_an_executed_state_and_unknown_state() -> None:
    async with running() as (_, client):
        await chain(client)
        await trigger(client)
        (state,) = await claim(client, "A")
        await ok(
            client.post(
                f"{PREFIX}/state/{state['state_id']}/executed", json={"outputs": [{"n": 1}]}
            )
        )  # non-string -> NEXT_CREATED_ERROR
        response = await client.post(f"{PREFIX}/state/{'1' * 24}/errored", json={"error": "x"})
        assert (response.status_code, response.json()) == (404, {"detail": "State not found"})
        response = await client.post(f"{PREFIX}/state/{state['state_id']}/errored", json={})
        assert response.status_code == 422


async def test_prune_keeps_enqueue_after_and_needs_queued() -> None:
    async with running() as (sm, client):
        await chain(client)
        run_id = await trigger(client)
        (state,) = await claim(client, "A")
        url = f"{PREFIX}/state/{state['state_id']}/prune"
        assert (await client.post(url, json={})).status_code == 422
        result = await ok(client.post(url, json={"data": {"why": "enough"}}))
        assert result == {"enqueue_after": START_MS, "status": "PRUNED"}
        response = await client.post(url, json={"data": {}})
        assert (response.status_code, response.json()) == (400, {"detail": "State is not queued"})
        (stored,) = sm.states(run_id)
        assert (stored["status"], stored["data"]) == ("PRUNED", {"why": "enough"})
        assert (await sm.wait_for_run(run_id))["status"] == "SUCCESS"  # PRUNED counts as success
        response = await client.post(f"{PREFIX}/state/{'2' * 24}/prune", json={"data": {}})
        assert response.status_code == 404


async def test_re_enqueue_after_revives_any_state_after_the_delay() -> None:
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_id = await trigger(client)
        (state,) = await claim(client, "A")
        url = f"{PREFIX}/state/{state['state_id']}/re-enqueue-after"
        for bad in (0, -5, "soon"):
            response = await client.post(url, json={"enqueue_after": bad})
            assert response.status_code == 422, bad
        await executed(client, state["state_id"], [])
        assert (await sm.wait_for_run(run_id))["status"] == "SUCCESS"
        result = await ok(client.post(url, json={"enqueue_after": 2500}))
        assert result == {"enqueue_after": START_MS + 2500, "status": "CREATED"}
        assert sm.run_summary(run_id)["status"] == "PENDING"
        assert await claim(client, "A") == []
        await sm.clock.sleep(2.5)
        assert [s["state_id"] for s in await claim(client, "A")] == [state["state_id"]]
        response = await client.post(
            f"{PREFIX}/state/bad/re-enqueue-after", json={"enqueue_after": 1}
        )
        assert response.status_code == 404


async def test_manual_retry_creates_a_fresh_state_and_409s_on_a_reused_fanout_id() -> None:
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_id = await trigger(client)
        (state,) = await claim(client, "A")
        url = f"{PREFIX}/state/{state['state_id']}/manual-retry"
        created = await ok(client.post(url, json={"fanout_id": "f-1"}))
        assert created["status"] == "CREATED"
        assert created["id"] != state["state_id"]
        response = await client.post(url, json={"fanout_id": "f-1"})
        assert (response.status_code, response.json()) == (
            409,
            {"detail": "Duplicate retry state detected"},
        )
        statuses = {s["id"]: s["status"] for s in sm.states(run_id)}
        assert statuses == {state["state_id"]: "RETRY_CREATED", created["id"]: "CREATED"}
        response = await client.post(
            f"/v0/namespace/other/state/{state['state_id']}/manual-retry", json={"fanout_id": "z"}
        )
        assert (response.status_code, response.json()) == (404, {"detail": "State not found"})
        assert (await client.post(url, json={})).status_code == 422


async def test_runs_are_paginated_newest_first() -> None:
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_ids = []
        for _ in range(3):
            run_ids.append(await trigger(client))
            await sm.clock.sleep(1)
        page1 = await ok(client.get(f"{PREFIX}/runs/1/2"))
        page2 = await ok(client.get(f"{PREFIX}/runs/2/2"))
        assert (page1["total"], page1["page"], page1["size"], page1["namespace"]) == (3, 1, 2, "ns")
        assert [r["run_id"] for r in page1["runs"] + page2["runs"]] == run_ids[::-1]
        item = page1["runs"][0]
        assert set(item) == {
            "run_id",
            "graph_name",
            "success_count",
            "pending_count",
            "errored_count",
            "retried_count",
            "total_count",
            "status",
            "created_at",
        }
        assert (item["pending_count"], item["status"]) == (1, "PENDING")
        everything = await ok(client.get(f"{PREFIX}/runs/1/0"))
        assert len(everything["runs"]) == 3
        response = await client.get(f"{PREFIX}/runs/0/10")
        assert response.status_code == 400  # upstream: 500 (docs/fidelity.md, §7.1)


async def test_run_graph_of_an_unknown_run_is_empty() -> None:
    async with running() as (_, client):
        graph = await ok(client.get(f"{PREFIX}/states/run/nope/graph"))
    assert graph["graph_name"] == ""
    assert (graph["nodes"], graph["edges"], graph["root_states"]) == ([], [], [])
    assert graph["execution_summary"] == dict.fromkeys(STATUS_ORDER, 0)


async def test_node_details_and_its_errors() -> None:
    async with running() as (_, client):
        await chain(client)
        run_id = await trigger(client)
        (root,) = await claim(client, "A")
        await executed(client, root["state_id"], [{"n": "7"}])
        (child,) = await claim(client, "B")
        url = f"{PREFIX}/graph/g/run/{run_id}/node/{child['state_id']}"
        details = await ok(client.get(url))
        assert details["parents"] == {"a": root["state_id"]}
        assert (details["inputs"], details["status"], details["graph_name"]) == (
            {"n": "7"},
            "QUEUED",
            "g",
        )
        response = await client.get(f"{PREFIX}/graph/g/run/{run_id}/node/xyz")
        assert (response.status_code, response.json()) == (
            400,
            {"detail": "Invalid node ID format: xyz"},
        )
        response = await client.get(f"{PREFIX}/graph/other/run/{run_id}/node/{child['state_id']}")
        assert response.status_code == 404
        assert response.json() == {
            "detail": f"Node {child['state_id']} not found in run {run_id} for graph other"
        }


async def test_nan_in_stored_outputs_is_served_back_without_a_500() -> None:
    async with running() as (_, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        run_id = await trigger(client)
        (state,) = await claim(client, "A")
        response = await client.post(
            f"{PREFIX}/state/{state['state_id']}/executed",
            content=b'{"outputs": [{"x": NaN}]}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 200
        details = await client.get(f"{PREFIX}/graph/g/run/{run_id}/node/{state['state_id']}")
    assert details.status_code == 200
    assert '"x":NaN' in details.text


@pytest.mark.parametrize("endpoint", ["errored", "prune", "manual-retry", "re-enqueue-after"])
async def test_state_endpoints_reject_a_non_object_body(endpoint: str) -> None:
    async with running() as (_, client):
        response = await client.post(f"{PREFIX}/state/{'0' * 24}/{endpoint}", json=["x"])
    assert response.status_code == 422


async def test_errored_looks_the_template_up_in_the_path_namespace() -> None:
    # §2.9: the state is found whatever the path namespace, the template is not.
    async with running() as (_, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        await trigger(client)
        (state,) = await claim(client, "A")
        response = await client.post(
            f"/v0/namespace/other/state/{state['state_id']}/errored", json={"error": "x"}
        )
    assert (response.status_code, response.json()) == (404, {"detail": "Graph template not found"})


async def test_errored_on_an_executed_state_says_already_executed() -> None:
    # EXECUTED is transient in the fake (next states are created at once), so put one there.
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        await trigger(client)
        (state,) = await claim(client, "A")
        store = sm.engine.store
        store.set_status(store.states[state["state_id"]], "EXECUTED")
        response = await client.post(
            f"{PREFIX}/state/{state['state_id']}/errored", json={"error": "x"}
        )
    assert (response.status_code, response.json()) == (400, {"detail": "State is already executed"})


async def test_unites_on_an_ancestor_fans_in_once_after_every_branch() -> None:
    # §3.5: root -> splitter (fan-out) -> worker -> merger(unites: root) creates ONE merger.
    async with running() as (sm, client):
        await setup_graph(
            client,
            [
                registration("R", outputs=("v",)),
                registration("S", outputs=("item",)),
                registration("W", ("item",), ("r",)),
                registration("M", ("v",)),
            ],
            [
                graph_node("r", "R", next_nodes=["s"]),
                graph_node("s", "S", next_nodes=["w"]),
                graph_node("w", "W", {"item": "${{ s.outputs.item }}"}, next_nodes=["m"]),
                graph_node(
                    "m",
                    "M",
                    {"v": "${{ r.outputs.v }}"},
                    unites={"identifier": "r", "strategy": "ALL_SUCCESS"},
                ),
            ],
        )
        run_id = await trigger(client)
        (root,) = await claim(client, "R")
        await executed(client, root["state_id"], [{"v": "hello"}])
        (splitter,) = await claim(client, "S")
        await executed(client, splitter["state_id"], [{"item": str(i)} for i in range(3)])
        workers = await claim(client, "W")
        assert len(workers) == 3
        for worker in workers:
            assert await claim(client, "M") == []
            await executed(client, worker["state_id"], [{"r": "ok"}])
        (merger,) = await claim(client, "M")
        assert merger["inputs"] == {"v": "hello"}
        await executed(client, merger["state_id"], [])
        summary = await sm.wait_for_run(run_id)
        assert (summary["status"], summary["total_count"]) == ("SUCCESS", 1 + 3 + 3 + 1)

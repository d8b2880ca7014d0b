"""HTTP mapping of nodes, graphs, trigger, namespaces and secrets (contract §2.1-§2.6, §2.13,
§2.17, §4.5)."""

from __future__ import annotations

import json

import pytest

from tests.builders import graph_node

from ..http_support import (
    PREFIX,
    REGISTERED_NODE_KEYS,
    claim,
    ok,
    registration,
    running,
    setup_graph,
    trigger,
)

ROOT = [graph_node("a", "A", {"x": "${{ store.k }}"})]


async def test_register_nodes_echoes_in_order_and_drops_unknown_fields() -> None:
    async with running() as (_, client):
        nodes = [
            {**registration("B", ("x",), ("y",), ("tok",)), "namespace": "ignored"},
            registration("A"),
        ]
        body = {"runtime_name": "rt", "runtime_namespace": "ignored", "nodes": nodes}
        result = await ok(client.put(f"{PREFIX}/nodes/", json=body))
        assert result["runtime_name"] == "rt"
        assert [n["name"] for n in result["registered_nodes"]] == ["B", "A"]
        assert set(result["registered_nodes"][0]) == {
            "name",
            "inputs_schema",
            "outputs_schema",
            "secrets",
        }
        listed = await ok(client.get(f"{PREFIX}/nodes/"))
        assert listed["namespace"] == "ns"
        assert listed["count"] == 2
        first = listed["nodes"][0]
        assert set(first) == REGISTERED_NODE_KEYS
        assert first["runtime_namespace"] == "ns"
        assert len(first["_id"]) == 24


async def test_register_nodes_requires_secrets_list() -> None:
    async with running() as (_, client):
        bad = {"name": "A", "inputs_schema": {}, "outputs_schema": {}}
        response = await client.put(f"{PREFIX}/nodes/", json={"runtime_name": "rt", "nodes": [bad]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "nodes", 0, "secrets"]


async def test_namespaces_are_those_of_registered_nodes_only_sorted() -> None:
    async with running() as (_, client):
        for ns in ("zeta", "alpha"):
            await ok(
                client.put(
                    f"/v0/namespace/{ns}/nodes/",
                    json={"runtime_name": "rt", "nodes": [registration("A")]},
                )
            )
        body = {"secrets": {}, "nodes": [graph_node("a", "A", namespace="graphs-only")]}
        await ok(client.put("/v0/namespace/graphs-only/graph/g", json=body), 201)
        result = await ok(client.get("/v0/namespaces"))
    assert result == {"namespaces": ["alpha", "zeta"], "count": 2}


async def test_upsert_is_201_pending_then_get_says_valid() -> None:
    async with running() as (_, client):
        await ok(
            client.put(
                f"{PREFIX}/nodes/", json={"runtime_name": "rt", "nodes": [registration("A")]}
            )
        )
        body = {"secrets": {"tok": "plain"}, "nodes": [graph_node("a", "A")]}
        created = await ok(client.put(f"{PREFIX}/graph/g", json=body), 201)
        assert created["validation_status"] == "PENDING"
        assert created["validation_errors"] == []
        assert created["secrets"] == {"tok": True}
        got = await ok(client.get(f"{PREFIX}/graph/g"))
        assert got["validation_status"] == "VALID"
        assert got["secrets"] == {"tok": True}
        updated = await ok(client.put(f"{PREFIX}/graph/g", json=body), 201)
        assert updated["validation_status"] == "PENDING"


async def test_upsert_with_unregistered_node_becomes_invalid_with_errors() -> None:
    async with running() as (_, client):
        body = {"secrets": {}, "nodes": [graph_node("a", "Ghost")]}
        await ok(client.put(f"{PREFIX}/graph/g", json=body), 201)
        got = await ok(client.get(f"{PREFIX}/graph/g"))
        assert got["validation_status"] == "INVALID"
        # Upstream reports the missing node twice (with and without the period), contract §4.4.
        assert got["validation_errors"] == [
            "Node Ghost in namespace ns does not exist.",
            "Node Ghost in namespace ns does not exist",
        ]
        response = await client.post(f"{PREFIX}/graph/g/trigger", json={})
    assert response.status_code == 400
    assert response.json() == {"detail": "Graph template is not valid"}


async def test_structural_error_is_400_and_stores_nothing() -> None:
    async with running() as (_, client):
        body = {"secrets": {}, "nodes": [graph_node("a", "A"), graph_node("b", "A")]}
        response = await client.put(f"{PREFIX}/graph/g", json=body)
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert detail.startswith("Error validating graph template: ")
        assert "There should be exactly one root node in the graph but found 2 nodes" in detail
        missing = await client.get(f"{PREFIX}/graph/g")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Graph template g not found in namespace ns"}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        pytest.param({"nodes": []}, ["body", "secrets"], id="secrets-required"),
        pytest.param(
            {"secrets": {}, "nodes": [], "retry_policy": {"max_retries": -1}},
            ["body", "retry_policy", "max_retries"],
            id="retry-negative",
        ),
        pytest.param(
            {
                "secrets": {},
                "nodes": [],
                "triggers": [{"type": "CRON", "value": {"expression": "not cron"}}],
            },
            # upstream's loc, recorded from the server (contract §4.1): no "value" segment
            ["body", "triggers", 0, "expression"],
            id="bad-cron",
        ),
        pytest.param(
            {"secrets": {}, "nodes": [], "store_config": {"required_keys": ["a.b"]}},
            ["body", "store_config", "required_keys"],
            id="dotted-key",
        ),
    ],
)
async def test_upsert_request_validation_is_422(body: dict[str, object], loc: list[object]) -> None:
    async with running() as (_, client):
        response = await client.put(f"{PREFIX}/graph/g", json=body)
    assert response.status_code == 422
    assert [e["loc"][: len(loc)] for e in response.json()["detail"]] == [loc]


async def test_list_graphs_shows_encrypted_secrets_never_plaintext() -> None:
    async with running() as (_, client):
        await setup_graph(
            client, [registration("A")], [graph_node("a", "A")], secrets={"tok": "plain-value"}
        )
        listed = await ok(client.get(f"{PREFIX}/graphs/"))
    assert listed["namespace"] == "ns"
    assert listed["count"] == 1
    (document,) = listed["templates"]
    assert document["name"] == "g"
    assert len(document["_id"]) == 24
    assert set(document["secrets"]) == {"tok"}
    assert isinstance(document["secrets"]["tok"], str)
    assert "plain-value" not in listed.__repr__()


async def test_state_secrets_gives_every_plaintext_of_the_graph() -> None:
    async with running() as (_, client):
        await setup_graph(
            client,
            [registration("A", secrets=("tok",))],
            [graph_node("a", "A")],
            secrets={"tok": "plain", "other": "too"},
        )
        await trigger(client)
        (state,) = await claim(client, "A")
        result = await ok(client.get(f"{PREFIX}/state/{state['state_id']}/secrets"))
        assert result == {"secrets": {"tok": "plain", "other": "too"}}
        elsewhere = await client.get(f"/v0/namespace/other/state/{state['state_id']}/secrets")
        assert elsewhere.status_code == 404  # upstream: 500 (docs/fidelity.md, §2.13)
        unknown = await client.get(f"{PREFIX}/state/{'f' * 24}/secrets")
        assert (unknown.status_code, unknown.json()) == (404, {"detail": "State not found"})


async def test_a_lone_surrogate_in_a_secret_is_stored_and_served_back() -> None:
    # Upstream answers 500 (the AES encoding is strict UTF-8); no input may give a 5xx here.
    async with running() as (_, client):
        await setup_graph(
            client,
            [registration("A", secrets=("tok",))],
            [graph_node("a", "A")],
            secrets={"tok": "plain"},
        )
        # httpx's json= refuses a lone surrogate; json.dumps writes the escape a client may send.
        body = {"secrets": {"tok": "hunter2\ud800"}, "nodes": [graph_node("a", "A")]}
        await ok(client.put(f"{PREFIX}/graph/g", content=json.dumps(body)), 201)
        await trigger(client)
        (state,) = await claim(client, "A")
        result = await ok(client.get(f"{PREFIX}/state/{state['state_id']}/secrets"))
    assert result == {"secrets": {"tok": "hunter2\ud800"}}


async def test_trigger_resolves_store_and_overrides_root_inputs() -> None:
    async with running() as (sm, client):
        await setup_graph(
            client,
            [registration("A", ("x", "y"))],
            [graph_node("a", "A", {"x": "${{ store.k }}!", "y": "default"})],
            store_config={"required_keys": ["k"]},
        )
        run_id = await trigger(client, inputs={"y": "given", "extra": "ignored"}, store={"k": "v"})
        (state,) = await claim(client, "A")
        assert state["inputs"] == {"x": "v!", "y": "given"}
        assert sm.run_summary(run_id)["pending_count"] == 1


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        pytest.param({}, 400, "Missing store keys: {'k'}", id="missing-store-key"),
        pytest.param({"store": {"k": 1}}, 422, None, id="store-value-not-string"),
        pytest.param({"inputs": {"x": 1}}, 422, None, id="input-not-string"),
        pytest.param({"start_delay": -1}, 422, None, id="negative-delay"),
    ],
)
async def test_trigger_errors(body: dict[str, object], status: int, detail: str | None) -> None:
    async with running() as (_, client):
        await setup_graph(
            client,
            [registration("A", ("x",))],
            [graph_node("a", "A", {"x": "lit"})],
            store_config={"required_keys": ["k"]},
        )
        response = await client.post(f"{PREFIX}/graph/g/trigger", json=body)
    assert response.status_code == status
    if detail is not None:
        assert response.json() == {"detail": detail}


async def test_trigger_unknown_graph_is_404_and_bad_placeholder_400() -> None:
    async with running() as (_, client):
        response = await client.post(f"{PREFIX}/graph/nope/trigger", json={})
        assert response.status_code == 404
        assert response.json() == {
            "detail": "Graph template not found for namespace ns and graph nope"
        }
        await setup_graph(
            client, [registration("A", ("x",))], ROOT, store_config={"required_keys": ["k"]}
        )
        response = await client.post(f"{PREFIX}/graph/g/trigger", json={})
    # §4.6: placeholder resolution (step 3) fails before the required-keys check (step 4).
    assert response.status_code == 400
    assert response.json() == {
        "detail": "Invalid input: 400: Dependent k not found in store for root node a"
    }


async def test_start_delay_holds_the_root_until_due() -> None:
    async with running() as (sm, client):
        await setup_graph(client, [registration("A")], [graph_node("a", "A")])
        await trigger(client, start_delay=5000)
        assert await claim(client, "A") == []
        await sm.clock.sleep(5.0)
        assert len(await claim(client, "A")) == 1

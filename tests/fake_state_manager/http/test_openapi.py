"""``/openapi.json`` describes the answers (issue #9): statuses, datetimes, examples, links.

The bodies themselves are checked against the declared models in ``test_responses.py``; these
tests check the document: each operation lists exactly ``openapi.response_models``, no datetime
claims ``format: date-time`` (the values carry no offset), the request examples are a working
conversation, and every link names a real operation and its parameters.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from fake_state_manager._http import responses as r
from fake_state_manager._http.openapi import (
    EXAMPLE_BODIES,
    EXAMPLE_NAMESPACE,
    EXAMPLE_PARAMETERS,
    LINKS,
    openapi_document,
    response_models,
)
from fake_state_manager._http.routes import ENDPOINTS, Endpoint

from ..http_support import ok, running

DOCUMENT = openapi_document()
_BY_NAME = {e.name: e for e in ENDPOINTS}


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = DOCUMENT["paths"][endpoint.path][endpoint.method.lower()]
    return operation


def _walk(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value, *(d for v in value.values() for d in _walk(v))]
    if isinstance(value, list):
        return [d for v in value for d in _walk(v)]
    return []


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_each_operation_lists_every_status_with_its_body_model(endpoint: Endpoint) -> None:
    responses = _operation(endpoint)["responses"]
    models = response_models(endpoint)
    assert set(responses) == {str(s) for s in models}
    for status, model in models.items():
        schema = responses[str(status)]["content"]["application/json"]["schema"]
        assert schema == {"$ref": f"#/components/schemas/{model.__name__}"}, status
    assert {401, 413, 500} <= set(models)
    if endpoint.body is not None:
        assert {400, 422} <= set(models)
    if "{" in endpoint.path:
        assert 404 in models


def test_health_lists_its_statuses() -> None:
    responses = DOCUMENT["paths"]["/health"]["get"]["responses"]
    assert set(responses) == {"200", "413", "500"}


def test_datetimes_are_offsetless_iso_strings_not_format_date_time() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert not [d for d in _walk(DOCUMENT) if d.get("format") == "date-time"]
    pattern = re.compile(r.ISO_DATETIME_PATTERN)
    for model, field in [
        ("EnqueuedState", "created_at"),
        ("RunListItem", "created_at"),
        ("RegisteredNodeDocument", "updated_at"),
        ("GraphTemplateDocument", "created_at"),
        ("UpsertGraphTemplateResponse", "updated_at"),
        ("NodeRunDetailsResponse", "created_at"),
    ]:
        schema = schemas[model]["properties"][field]
        assert schema["type"] == "string"
        assert schema["pattern"] == r.ISO_DATETIME_PATTERN
        assert "without offset" in schema["description"]
    assert pattern.match("2026-01-01T00:00:00.123000")
    assert pattern.match("2026-01-01T00:00:00")  # whole seconds: no fraction (§1.1)
    assert not pattern.match("2026-01-01T00:00:00Z")
    assert not pattern.match("2026-01-01T00:00:00.123000+00:00")


def test_path_parameters_and_examples_match_their_schemas() -> None:
    for endpoint in ENDPOINTS:
        for parameter in _operation(endpoint).get("parameters", []):
            schema, example = parameter["schema"], parameter["example"]
            if schema["type"] == "integer":
                assert isinstance(example, int)
                assert example >= schema.get("minimum", example)
            else:
                assert re.search(schema["pattern"], example), parameter
        if endpoint.body is not None:
            content = _operation(endpoint)["requestBody"]["content"]["application/json"]
            assert content["example"] == EXAMPLE_BODIES[endpoint.name]
            endpoint.body.model_validate(content["example"])


def test_links_name_real_operations_and_all_their_path_parameters() -> None:
    assert set(LINKS) <= set(_BY_NAME)
    for source, targets in LINKS.items():
        links = _operation(_BY_NAME[source])["responses"][str(_BY_NAME[source].status)]["links"]
        assert set(links) == set(targets)
        for target, parameters in targets.items():
            wanted = set(re.findall(r"{(\w+)}", _BY_NAME[target].path))
            assert set(parameters) == wanted, (source, target)


async def test_the_request_examples_are_a_working_conversation() -> None:
    async def send(client: httpx.AsyncClient, name: str, **params: Any) -> Any:
        endpoint = _BY_NAME[name]
        url = endpoint.path.format(**(EXAMPLE_PARAMETERS | params))
        kwargs = {} if endpoint.body is None else {"json": EXAMPLE_BODIES[name]}
        return await ok(client.request(endpoint.method, url, **kwargs), endpoint.status)

    async with running() as (_, client):
        await send(client, "register_nodes")
        assert (await send(client, "list_nodes"))["count"] == 1
        await send(client, "upsert_graph_template")
        template = await send(client, "get_graph_template")
        assert template["validation_status"] == "VALID", template["validation_errors"]
        assert (await send(client, "list_graph_templates"))["count"] == 1
        state_ids = []
        for _ in range(4):
            run_id = (await send(client, "trigger_graph"))["run_id"]
            (state,) = (await send(client, "enqueue_states"))["states"]
            state_ids.append(state["state_id"])
        first, second, third, fourth = state_ids
        await send(client, "executed_state", state_id=first)
        await send(client, "errored_state", state_id=second)
        await send(client, "prune_state", state_id=third)
        await send(client, "re_enqueue_after_state", state_id=fourth)
        await send(client, "manual_retry_state", state_id=second)
        assert await send(client, "get_secrets", state_id=first) == {"secrets": {"token": "s3cr3t"}}
        assert (await send(client, "get_runs"))["total"] == 4
        graph = await send(client, "get_graph_structure", run_id=run_id)
        assert [n["id"] for n in graph["nodes"]] == [fourth]
        await send(client, "get_node_run_details", run_id=run_id, node_id=fourth)
        assert EXAMPLE_NAMESPACE in (await send(client, "list_namespaces"))["namespaces"]


def test_every_property_of_every_body_is_described() -> None:
    # A reader of /openapi.json (or of a client generated from it) learns what each field means
    # there, requests and answers alike; a field added without a description fails here.
    properties = {
        f"{name}.{prop}": prop_schema
        for name, schema in DOCUMENT["components"]["schemas"].items()
        for prop, prop_schema in schema.get("properties", {}).items()
    }
    assert "NodeRunDetailsResponse.parents" in properties  # the walk reaches the answers
    assert not [name for name, schema in properties.items() if not schema.get("description")]

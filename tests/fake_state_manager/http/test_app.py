"""Transport conventions of the app: auth order, error shapes, request id, CORS (contract §1)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from fake_state_manager import Engine, FakeStateManager, create_app
from fake_state_manager._http.middleware import INTERNAL_ERROR_DETAIL

from ..http_support import KEY, PREFIX, ok, running


async def test_health_needs_no_key_and_says_ok() -> None:
    async with running() as (_, client):
        del client.headers["x-api-key"]
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"message": "OK"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", f"{PREFIX}/nodes/", id="list-nodes"),
        pytest.param("GET", "/v0/namespaces", id="namespaces"),
        pytest.param("GET", f"{PREFIX}/runs/1/10", id="runs"),
        pytest.param("GET", f"{PREFIX}/state/{'0' * 24}/secrets", id="secrets"),
    ],
)
async def test_missing_or_wrong_key_is_401_without_www_authenticate(method: str, path: str) -> None:
    async with running() as (_, client):
        for headers in ({"x-api-key": "wrong"}, {"x-api-key": ""}):
            response = await client.request(method, path, headers=headers)
            assert response.status_code == 401
            assert response.json() == {"detail": "Invalid API key"}
            assert "www-authenticate" not in response.headers
        del client.headers["x-api-key"]
        response = await client.request(method, path)
        assert response.status_code == 401


async def test_api_key_header_name_is_case_insensitive() -> None:
    async with running() as (_, client):
        del client.headers["x-api-key"]
        response = await client.get("/v0/namespaces", headers={"X-API-KEY": KEY})
    assert response.status_code == 200


async def test_auth_order_invalid_json_beats_missing_key() -> None:
    # contract §1.2 check 1: a body that is not JSON is a 422 json_invalid, even with no key.
    async with running() as (_, client):
        del client.headers["x-api-key"]
        response = await client.post(
            f"{PREFIX}/states/enqueue",
            content=b'{"nodes": [',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["type"] == "json_invalid"
    assert error["loc"] == ["body", 11]
    assert error["msg"] == "JSON decode error"
    assert error["input"] == {}
    assert error["ctx"] == {"error": "Expecting value"}


async def test_auth_order_missing_key_beats_schema_errors() -> None:
    async with running() as (_, client):
        response = await client.post(
            f"{PREFIX}/states/enqueue", json={"nodes": 5}, headers={"x-api-key": "nope"}
        )
        assert response.status_code == 401
        response = await client.get(f"{PREFIX}/runs/one/two", headers={"x-api-key": "nope"})
        assert response.status_code == 401


async def test_schema_errors_have_fastapi_shape_with_body_and_path_locs() -> None:
    async with running() as (_, client):
        response = await client.post(f"{PREFIX}/states/enqueue", json={"nodes": "x"})
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert [e["loc"] for e in detail] == [["body", "nodes"], ["body", "batch_size"]]
        assert detail[0] == {
            "type": "list_type",
            "loc": ["body", "nodes"],
            "msg": "Input should be a valid list",
            "input": "x",
        }
        assert detail[1]["type"] == "missing"
        response = await client.get(f"{PREFIX}/runs/x/10")
        assert response.status_code == 422
        (error,) = response.json()["detail"]
        assert (error["type"], error["loc"], error["input"]) == (
            "int_parsing",
            ["path", "page"],
            "x",
        )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(
            b"",
            {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None},
            id="empty",
        ),
        pytest.param(
            b"null",
            {"type": "missing", "loc": ["body"], "msg": "Field required", "input": None},
            id="null",
        ),
        pytest.param(
            b"[1]",
            {
                "type": "model_attributes_type",
                "loc": ["body"],
                "msg": "Input should be a valid dictionary or object to extract fields from",
                "input": [1],
            },
            id="list",
        ),
    ],
)
async def test_body_that_is_not_an_object_is_422(content: bytes, expected: dict[str, Any]) -> None:
    async with running() as (_, client):
        response = await client.post(
            f"{PREFIX}/state/{'0' * 24}/errored",
            content=content,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422
    assert response.json() == {"detail": [expected]}


async def test_value_error_ctx_renders_like_fastapi() -> None:
    async with running() as (_, client):
        body = {
            "secrets": {},
            "nodes": [{"node_name": " ", "namespace": "ns", "identifier": "a", "inputs": {}}],
        }
        response = await client.put(f"{PREFIX}/graph/g", json=body)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "nodes", 0, "node_name"]
    assert error["msg"] == "Value error, Node name cannot be empty"
    assert error["ctx"] == {"error": {}}


async def test_non_utf8_body_is_400_parse_error() -> None:
    async with running() as (_, client):
        response = await client.post(
            f"{PREFIX}/states/enqueue",
            content=b'{"nodes": ["\xff"]}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 400
    assert response.json() == {"detail": "There was an error parsing the body"}


async def _prune_nested(depth: int) -> httpx.Response:
    """A prune whose ``data`` nests ``depth`` lists deep, for a state that does not exist."""
    nested = "[" * depth + "]" * depth
    async with running() as (_, client):
        return await client.post(
            f"{PREFIX}/state/{'0' * 24}/prune",
            content=f'{{"data": {{"x": {nested}}}}}'.encode(),
            headers={"content-type": "application/json"},
        )


@pytest.mark.parametrize("depth", [101, 500, 5000])
async def test_json_nested_too_deep_is_400_not_a_500(depth: int) -> None:
    # Upstream parses up to Python's recursion limit and then fails in MongoDB (100 levels).
    response = await _prune_nested(depth)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("There was an error parsing the body")


async def test_json_nested_within_the_limit_is_accepted() -> None:
    response = await _prune_nested(95)
    assert (response.status_code, response.json()) == (404, {"detail": "State not found"})


async def test_non_json_content_type_is_a_schema_error_after_auth() -> None:
    async with running() as (_, client):
        response = await client.post(
            f"{PREFIX}/states/enqueue", content=b"nodes=a", headers={"content-type": "text/plain"}
        )
        assert response.status_code == 422
        assert response.json()["detail"][0]["type"] == "model_attributes_type"
        response = await client.post(
            f"{PREFIX}/states/enqueue",
            content=b"{",
            headers={"content-type": "text/plain", "x-api-key": "bad"},
        )
        assert response.status_code == 401


async def test_nan_in_an_invalid_body_is_echoed_as_a_string_not_a_500() -> None:
    async with running() as (_, client):
        response = await client.post(
            f"{PREFIX}/states/enqueue",
            content=b'{"nodes": NaN, "batch_size": 1}',
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 422
    assert response.json()["detail"][0]["input"] == "nan"


async def test_unknown_path_is_404_and_wrong_method_405() -> None:
    async with running() as (_, client):
        response = await client.get("/v0/nothing-here")
        assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
        response = await client.delete(f"{PREFIX}/nodes/")
        assert (response.status_code, response.json()) == (405, {"detail": "Method Not Allowed"})
        assert "PUT" in response.headers["allow"]
        response = await client.head("/health")
        assert response.status_code == 405  # FastAPI adds no implicit HEAD


@pytest.mark.parametrize("suffix", ["nodes", "graphs"])
async def test_missing_trailing_slash_redirects_307(suffix: str) -> None:
    async with running() as (sm, client):
        response = await client.get(f"{PREFIX}/{suffix}")
        assert response.status_code == 307
        assert response.headers["location"] == f"{sm.uri}{PREFIX}/{suffix}/"
        followed = await client.get(f"{PREFIX}/{suffix}", follow_redirects=True)
        assert followed.status_code == 200


async def test_request_id_is_kept_when_a_uuid_and_replaced_otherwise() -> None:
    given = str(uuid.uuid4())
    async with running() as (_, client):
        response = await client.get("/health", headers={"x-exosphere-request-id": given})
        assert response.headers["x-exosphere-request-id"] == given
        response = await client.get("/health", headers={"x-exosphere-request-id": "not-a-uuid"})
        fresh = response.headers["x-exosphere-request-id"]
        assert fresh != "not-a-uuid"
        assert uuid.UUID(fresh).version == 4


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        pytest.param("GET", "/v0/namespaces", {"x-api-key": "bad"}, 401, id="401"),
        pytest.param("GET", f"{PREFIX}/runs/a/1", {}, 422, id="422"),
        pytest.param("GET", "/missing", {}, 404, id="404"),
        pytest.param("GET", f"{PREFIX}/graph/nope", {}, 404, id="engine-404"),
    ],
)
async def test_every_response_carries_a_request_id(
    method: str, path: str, headers: dict[str, str], status: int
) -> None:
    async with running() as (_, client):
        response = await client.request(method, path, headers=headers)
    assert response.status_code == status
    uuid.UUID(response.headers["x-exosphere-request-id"])


class _BrokenEngine(Engine):
    def namespaces(self) -> dict[str, Any]:
        raise RuntimeError("boom: a bug in the engine")


async def test_unexpected_exception_is_the_middleware_500_with_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sm = FakeStateManager(api_key=KEY, engine=_BrokenEngine())
    async with sm, sm.client() as client:
        response = await client.get("/v0/namespaces")
    assert response.status_code == 500
    assert response.json() == {"success": False, "detail": INTERNAL_ERROR_DETAIL}
    uuid.UUID(response.headers["x-exosphere-request-id"])
    assert sm.requests[-1].status == 500
    assert "boom" in caplog.text
    assert KEY not in caplog.text


async def test_cors_preflight_allows_the_default_origins() -> None:
    async with running(cors_origins=None) as (_, client):
        response = await client.options(
            f"{PREFIX}/states/enqueue",
            headers={
                "origin": "http://localhost:3000",
                "access-control-request-method": "POST",
                "access-control-request-headers": "x-api-key, x-exosphere-request-id",
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
        assert response.headers["access-control-allow-credentials"] == "true"
        for method in ("GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            assert method in response.headers["access-control-allow-methods"]
        assert "X-API-Key" in response.headers["access-control-allow-headers"]
        denied = await client.options(
            f"{PREFIX}/states/enqueue",
            headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
        )
        assert denied.status_code == 400
        simple = await client.get("/health", headers={"origin": "http://127.0.0.1:3001"})
        assert simple.headers["access-control-allow-origin"] == "http://127.0.0.1:3001"
        assert simple.headers["access-control-expose-headers"] == "X-Exosphere-Request-ID"


async def test_cors_origins_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "http://a.example, http://b.example")
    async with running() as (_, client):
        response = await client.get("/health", headers={"origin": "http://b.example"})
        assert response.headers["access-control-allow-origin"] == "http://b.example"
        response = await client.get("/health", headers={"origin": "http://localhost:3000"})
        assert "access-control-allow-origin" not in response.headers


def test_create_app_refuses_an_empty_key() -> None:
    with pytest.raises(ValueError, match="api_key must be a non-empty string"):
        create_app(Engine(), api_key="")


async def test_openapi_document_describes_every_v0_route_with_resolvable_refs() -> None:
    async with running() as (_, client):
        del client.headers["x-api-key"]
        document = await ok(client.get("/openapi.json"))
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    operations = {(m.upper(), p) for p, item in paths.items() for m in item}
    assert len([op for op in operations if op[1].startswith("/v0")]) == 17
    assert ("PUT", "/v0/namespace/{namespace_name}/graph/{graph_name}") in operations
    assert ("GET", "/health") in operations
    upsert = paths["/v0/namespace/{namespace_name}/graph/{graph_name}"]["put"]
    assert "201" in upsert["responses"]
    runs = paths["/v0/namespace/{namespace_name}/runs/{page}/{size}"]["get"]
    assert {p["name"]: p["schema"]["type"] for p in runs["parameters"]} == {
        "namespace_name": "string",
        "page": "integer",
        "size": "integer",
    }
    schemas = document["components"]["schemas"]

    def refs(value: Any) -> list[str]:
        if isinstance(value, dict):
            found = [value["$ref"]] if "$ref" in value else []
            return found + [r for v in value.values() for r in refs(v)]
        if isinstance(value, list):
            return [r for v in value for r in refs(v)]
        return []

    all_refs = refs(document)
    assert "#/components/schemas/UpsertGraphTemplateRequest" in all_refs
    for ref in all_refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.rsplit("/", 1)[1] in schemas, ref
    node_template = schemas["NodeTemplate"]
    assert {"node_name", "namespace", "identifier", "inputs"} <= set(node_template["required"])


async def test_openapi_request_schemas_are_the_validating_models_and_no_docs_pages() -> None:
    from fake_state_manager._http.routes import ENDPOINTS

    async with running() as (_, client):
        del client.headers["x-api-key"]
        document = await ok(client.get("/openapi.json"))
        for page in ("/docs", "/redoc"):
            assert (await client.get(page)).status_code == 404
    schemas = document["components"]["schemas"]
    for endpoint in ENDPOINTS:
        if endpoint.body is None:
            continue
        own = endpoint.body.model_json_schema()
        published = schemas[endpoint.body.__name__]
        assert published["properties"].keys() == own["properties"].keys(), endpoint.name
        assert published.get("required") == own.get("required"), endpoint.name

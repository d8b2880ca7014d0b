"""The 18 endpoints of contract §2 as data: one :class:`Endpoint` per route, thin handlers.

Each handler validates nothing itself: :func:`build_routes` parses and validates the request
(:mod:`fake_state_manager._http.parsing`, FastAPI's order of checks, §1.2), then the handler passes
plain values to one :class:`~fake_state_manager._engine.engine.Engine` method and the engine's
JSON-ready dict becomes the response. An :class:`~fake_state_manager._errors.ApiError` from the
engine becomes ``{"detail": ...}`` with its status (§1.3).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from fake_state_manager._http import requests as s
from fake_state_manager._http import responses as r
from fake_state_manager._http.middleware import BODY_SCOPE_KEY
from fake_state_manager._http.parsing import (
    MISSING,
    RequestError,
    json_response,
    parse_json_body,
    validate_body,
    validate_int_path,
)
from fake_state_manager._json import JsonDict

__all__ = ["ENDPOINTS", "Endpoint", "build_routes", "key_bytes", "key_matches"]

Params = dict[str, Any]
Handler = Callable[[Engine, Params, Any], JsonDict]

NS = "/v0/namespace/{namespace_name}"
_UNAUTHORIZED = {"detail": "Invalid API key"}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route of contract §2.

    Attributes:
        method: HTTP method.
        path: Starlette path template (parameter names as upstream's FastAPI app has them).
        name: operation id (also the OpenAPI ``operationId``).
        summary: one line for the OpenAPI document.
        handler: ``(engine, path_params, body_model_or_None) -> response dict``.
        body: the pydantic request model, or ``None`` for routes without a body.
        int_params: path parameters that must parse as ``int`` (else 422).
        status: the success status (201 for graph upsert, §2.3).
        response: the pydantic response model, for the OpenAPI document only.
        errors: the statuses of the engine's :class:`ApiError` answers for this route (400, 404,
            409); the ones every route of its kind can answer (401, 422, router 404, body
            parse 400, ...) are added by :func:`fake_state_manager._http.openapi.error_statuses`.
    """

    method: str
    path: str
    name: str
    summary: str
    handler: Handler
    body: type[BaseModel] | None = None
    int_params: tuple[str, ...] = ()
    status: int = 200
    response: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()


def _dump_list(items: list[Any]) -> list[Any]:
    return [i.model_dump(mode="json") if isinstance(i, BaseModel) else i for i in items]


def _register_nodes(e: Engine, p: Params, b: Any) -> JsonDict:
    return e.register_nodes(
        p["namespace_name"], runtime_name=b.runtime_name, nodes=_dump_list(b.nodes)
    )


def _state_report(
    action: str, summary: str, body: type[BaseModel], errors: tuple[int, ...] = (400, 404)
) -> Endpoint:
    """``POST .../state/{state_id}/<action>`` (§2.8-§2.12): one engine method per action.

    The method, the operation id and the response model are all named for the action
    (``re-enqueue-after`` -> ``Engine.re_enqueue_after``, ``re_enqueue_after_state``,
    ``ReEnqueueAfterResponse``), as upstream names them.
    """
    method = action.replace("-", "_")
    response = getattr(r, "".join(word.title() for word in action.split("-")) + "Response")
    return Endpoint(
        "POST", f"{NS}/state/{{state_id}}/{action}", f"{method}_state", summary,
        lambda e, p, b: getattr(e, method)(p["namespace_name"], p["state_id"], **dict(b)),
        body, response=response, errors=errors,
    )


# Every other body route passes the body's fields on by name: each field is the engine
# method's keyword argument of that name. ``dict(model)`` is shallow, so nested models reach the
# engine as the graph models, validated once (here).
ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "PUT", NS + "/nodes/", "register_nodes", "Register or update nodes (§2.1)",
        _register_nodes, s.RegisterNodesRequest, response=r.RegisterNodesResponse,
    ),
    Endpoint(
        "GET", NS + "/nodes/", "list_nodes", "List registered nodes (§2.2)",
        lambda e, p, b: e.list_nodes(p["namespace_name"]),
        response=r.ListNodesResponse,
    ),
    Endpoint(
        "PUT", NS + "/graph/{graph_name}", "upsert_graph_template",
        "Create or update a graph template (§2.3, §4)",
        lambda e, p, b: e.upsert_graph(p["namespace_name"], p["graph_name"], **dict(b)),
        s.UpsertGraphTemplateRequest, status=201, response=r.UpsertGraphTemplateResponse,
        errors=(400,),
    ),
    Endpoint(
        "GET", NS + "/graph/{graph_name}", "get_graph_template", "Get a graph template (§2.4)",
        lambda e, p, b: e.get_graph(p["namespace_name"], p["graph_name"]),
        response=r.UpsertGraphTemplateResponse, errors=(404,),
    ),
    Endpoint(
        "GET", NS + "/graphs/", "list_graph_templates", "List graph templates (§2.5)",
        lambda e, p, b: e.list_graphs(p["namespace_name"]),
        response=r.ListGraphTemplatesResponse,
    ),
    Endpoint(
        "POST", NS + "/graph/{graph_name}/trigger", "trigger_graph", "Start a run (§2.6, §4.6)",
        lambda e, p, b: e.trigger(p["namespace_name"], p["graph_name"], **dict(b)),
        s.TriggerGraphRequest, response=r.TriggerGraphResponse, errors=(400, 404),
    ),
    Endpoint(
        "POST", NS + "/states/enqueue", "enqueue_states", "Claim runnable states (§2.7, §3.3)",
        lambda e, p, b: e.enqueue(p["namespace_name"], **dict(b)),
        s.EnqueueRequest, response=r.EnqueueResponse,
    ),
    _state_report("executed", "Report success and outputs (§2.8, §3.4)", s.ExecutedRequest),
    _state_report("errored", "Report a failure (§2.9, §5)", s.ErroredRequest),
    _state_report("prune", "Prune signal (§2.10, §6.1)", s.PruneRequest),
    _state_report(
        "re-enqueue-after", "Re-enqueue-after signal (§2.11, §6.2)", s.ReEnqueueAfterRequest
    ),
    _state_report(
        "manual-retry", "Manual retry (§2.12, §6.3)", s.ManualRetryRequest, errors=(404, 409)
    ),
    Endpoint(
        "GET", NS + "/state/{state_id}/secrets", "get_secrets",
        "Plaintext graph secrets for a state (§2.13)",
        lambda e, p, b: e.state_secrets(p["namespace_name"], p["state_id"]),
        response=r.SecretsResponse, errors=(404,),
    ),
    Endpoint(
        "GET", NS + "/runs/{page}/{size}", "get_runs", "Paginated runs with counts (§2.14, §7.1)",
        lambda e, p, b: e.list_runs(p["namespace_name"], p["page"], p["size"]),
        int_params=("page", "size"),
        response=r.RunsResponse, errors=(400,),
    ),
    Endpoint(
        "GET", NS + "/states/run/{run_id}/graph", "get_graph_structure",
        "A run's states and edges (§2.15, §7.2)",
        lambda e, p, b: e.run_graph(p["namespace_name"], p["run_id"]),
        response=r.RunGraphResponse,
    ),
    Endpoint(
        "GET", NS + "/graph/{graph_name}/run/{run_id}/node/{node_id}", "get_node_run_details",
        "One state's details (§2.16)",
        lambda e, p, b: e.node_details(
            p["namespace_name"], p["graph_name"], p["run_id"], p["node_id"]
        ),
        response=r.NodeRunDetailsResponse, errors=(400, 404),
    ),
    Endpoint(
        "GET", "/v0/namespaces", "list_namespaces", "Namespaces of registered nodes (§2.17)",
        lambda e, p, b: e.namespaces(),
        response=r.NamespacesResponse,
    ),
)


async def _health(request: Request) -> Response:
    # §2 #1: no auth, no store access.
    return json_response({"message": "OK"})


def key_bytes(api_key: str) -> bytes:
    """The bytes a client's ``x-api-key`` header must carry to match ``api_key`` (§1.2).

    Headers are latin-1 on the wire (Starlette decodes them so), and upstream compares the decoded
    text with its key; comparing the latin-1 bytes is the same test. A key with characters outside
    latin-1 can match nothing upstream; here it matches its UTF-8 bytes.
    """
    try:
        return api_key.encode("latin-1")
    except UnicodeEncodeError:
        return api_key.encode("utf-8")


def key_matches(header: str | None, expected: bytes) -> bool:
    """Compare a presented key in constant time, so response timing does not reveal a prefix."""
    if header is None:
        return False
    return hmac.compare_digest(header.encode("latin-1"), expected)


def build_routes(
    engine: Engine,
    *,
    api_key: str,
    before: Callable[[], object] | None = None,
    after: Callable[[], object] | None = None,
) -> list[Route]:
    """The Starlette routes of every endpoint, ``/health`` included.

    Args:
        engine: the engine every handler calls.
        api_key: the one global key (§1.2).
        before: called at the start of every authorised ``/v0`` request (the fake fires due cron
            triggers lazily here).
        after: called after every engine call that returned (state may have changed).
    """
    routes = [Route("/health", _health, methods=["GET"], name="health")]
    for endpoint in ENDPOINTS:
        routes.append(
            Route(
                endpoint.path,
                _make_handler(endpoint, engine, api_key, before, after),
                methods=[endpoint.method],
                name=endpoint.name,
            )
        )
    for route in routes:
        # FastAPI routes answer only their declared method; Starlette adds HEAD to GET routes.
        assert route.methods is not None
        route.methods.discard("HEAD")
    return routes


def _make_handler(
    endpoint: Endpoint,
    engine: Engine,
    api_key: str,
    before: Callable[[], object] | None,
    after: Callable[[], object] | None,
) -> Callable[[Request], Any]:
    model = endpoint.body
    int_params = endpoint.int_params
    handler = endpoint.handler
    status = endpoint.status
    expected_key = key_bytes(api_key)

    async def handle(request: Request) -> Response:
        try:
            data: Any = MISSING
            if model is not None:
                data = await parse_json_body(request)  # check 1: JSON syntax (§1.2)
                if data is not MISSING:
                    request.scope[BODY_SCOPE_KEY] = data
            if not key_matches(request.headers.get("x-api-key"), expected_key):  # check 2 (§1.2)
                return json_response(_UNAUTHORIZED, 401)
            errors: list[JsonDict] = []  # check 3: path and body schema (§1.2)
            params: Params = dict(request.path_params)
            for name in int_params:
                params[name] = validate_int_path(name, params[name], errors)
            body = validate_body(model, data, errors) if model is not None else None
            if errors:
                return json_response({"detail": errors}, 422)
        except RequestError as exc:
            return exc.response()
        try:
            if before is not None:
                before()  # inside the try: with --db, its cron firing can answer 503 too
            result = handler(engine, params, body)
        except ApiError as exc:
            return json_response({"detail": exc.detail}, exc.status)
        finally:
            if after is not None:
                after()
        return json_response(result, status)

    return handle

"""``/openapi.json``: an OpenAPI 3.1 document of the ``/v0`` API (issue: dev server).

Generated from the same pydantic models that validate requests (:data:`ENDPOINTS`) and describe
the answers (:mod:`fake_state_manager._http.responses`), so the document cannot drift from what
the routes accept and send. Shapes follow FastAPI's documents (``422`` with FastAPI's
``HTTPValidationError`` shape, ``APIKeyHeader`` security scheme) because that is what upstream
serves; unlike FastAPI's, every operation also lists every error status it can answer
(:func:`response_models`), so a client or a schema checker (schemathesis) sees all of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from exo_ref import VERSION
from fake_state_manager._http import responses as r
from fake_state_manager._http.routes import ENDPOINTS, Endpoint
from fake_state_manager._json import JsonDict

__all__ = [
    "ERROR_MODELS",
    "EXAMPLE_BODIES",
    "EXAMPLE_NAMESPACE",
    "EXAMPLE_PARAMETERS",
    "LINKS",
    "error_statuses",
    "openapi_document",
    "response_models",
]

_REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)}")

#: The body model of each error status (contract §1.3). 413 comes from ``BodyLimitMiddleware``
#: and 500 from ``UnhandledExceptionsMiddleware``; the others from the routes and the engine.
ERROR_MODELS: dict[int, type[BaseModel]] = {
    400: r.ErrorResponse,
    401: r.ErrorResponse,
    404: r.ErrorResponse,
    409: r.ErrorResponse,
    413: r.ErrorResponse,
    422: r.ValidationErrorResponse,
    500: r.InternalErrorResponse,
    503: r.ErrorResponse,
}

#: Statuses the middleware can answer for any request, whatever the route.
_MIDDLEWARE_STATUSES = (413, 500)

_DESCRIPTIONS = {
    401: "Invalid API key: the x-api-key header is missing or wrong",
    409: "Conflict: Duplicate retry state detected",
    413: "Request body too large: over the server's limit (an addition of the fake; checked "
    "before the body is read, with or without a key)",
    500: "Internal Server Error (UnhandledExceptionsMiddleware): a bug in the fake",
    503: "Service Unavailable: with --db, the request (or the cron firing before it) could not"
    " be saved to the database; nothing was changed (an addition of the fake)",
}


def error_statuses(endpoint: Endpoint) -> tuple[int, ...]:
    """Every error status ``endpoint`` can answer, sorted.

    The engine's (``endpoint.errors``), plus those its shape brings: 401 for every ``/v0`` route;
    400 (a body that is not UTF-8 or nested too deep) and 422 for a route with a body; 422 for
    ``int`` path parameters; 404 from the router for a path parameter that cannot match (empty,
    or a ``/`` in it); 413 and 500 from the middleware; 503 for every ``/v0`` route, since with
    ``--db`` each may commit (its own changes, or cron triggers fired before it) and a failed
    commit answers 503.
    """
    statuses = {401, 503, *_MIDDLEWARE_STATUSES, *endpoint.errors}
    if endpoint.body is not None:
        statuses |= {400, 422}
    if endpoint.int_params:
        statuses.add(422)
    if _PARAM.search(endpoint.path):
        statuses.add(404)
    return tuple(sorted(statuses))


def response_models(endpoint: Endpoint) -> dict[int, type[BaseModel]]:
    """Status -> body model of every answer ``endpoint`` can give, its success status first."""
    assert endpoint.response is not None, endpoint.name
    models: dict[int, type[BaseModel]] = {endpoint.status: endpoint.response}
    for status in error_statuses(endpoint):
        models[status] = ERROR_MODELS[status]
    return models


#: Per status with endpoint-dependent causes: its title, then (applies to the endpoint?, cause)
#: in the order the app checks them.
_CAUSES: dict[int, tuple[str, tuple[tuple[Callable[[Endpoint], bool], str], ...]]] = {
    400: ("Bad Request", (
        (lambda e: e.body is not None, "a body that is not UTF-8 or nests deeper than 100 levels"),
        (lambda e: 400 in e.errors, "a request the state manager refuses (see the contract)"),
    )),
    404: ("Not Found", (
        (lambda e: bool(_PARAM.search(e.path)),
         'no route matches (a path parameter is empty or contains "/")'),
        (lambda e: 404 in e.errors, "the resource does not exist in this namespace"),
    )),
    422: ("Validation Error", (
        (lambda e: e.body is not None, "a body that is not JSON (checked before the key)"),
        (lambda e: bool(e.int_params), "a path parameter that is not an integer"),
        (lambda e: e.body is not None, "a body that does not match its schema"),
    )),
}


def _description(endpoint: Endpoint, status: int) -> str:
    if status not in _CAUSES:
        return _DESCRIPTIONS[status]
    title, causes = _CAUSES[status]
    return title + ": " + ", or ".join(cause for applies, cause in causes if applies(endpoint))


def _json_content(schema: JsonDict) -> JsonDict:
    return {"application/json": {"schema": schema}}


Refs = dict[tuple[Any, JsonSchemaMode], JsonDict]


def _model_schemas(components: JsonDict) -> Refs:
    """One pass over every model: requests as validated, responses as serialised.

    ``models_json_schema`` shares and de-duplicates the ``$defs`` (naming input and output
    variants apart when they differ), which become the document's components.
    """
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(r.HealthResponse, "serialization")]
    wanted += [(model, "serialization") for model in dict.fromkeys(ERROR_MODELS.values())]
    for endpoint in ENDPOINTS:
        if endpoint.body is not None:
            wanted.append((endpoint.body, "validation"))
        if endpoint.response is not None:
            wanted.append((endpoint.response, "serialization"))
    refs, definitions = models_json_schema(wanted, ref_template=_REF)
    components.update(definitions.get("$defs", {}))
    return dict(refs)


def _responses(
    models: dict[int, type[BaseModel]], refs: Refs, describe: Callable[[int], str]
) -> JsonDict:
    return {
        str(status): {
            "description": describe(status),
            "content": _json_content(refs[(model, "serialization")]),
        }
        for status, model in sorted(models.items())
    }


#: Path parameters whose values the engine narrows further. An id that is not an ObjectId is
#: 404 ``State not found`` (``state_id``) or 400 ``Invalid node ID format`` (``node_id``); a
#: ``page`` below 1 is 400. Each answer is declared; the schema says which values can succeed.
_OBJECT_ID = {"type": "string", "pattern": "^[0-9a-fA-F]{24}$", "description": "ObjectId (hex)"}
_PARAM_SCHEMAS: dict[str, JsonDict] = {
    "state_id": _OBJECT_ID,
    "node_id": _OBJECT_ID,
    "page": {"type": "integer", "minimum": 1},
    "size": {"type": "integer", "description": "0: every run; a negative size counts as -size"},
}
#: What the router matches for any other parameter: one non-empty path segment (else 404).
_SEGMENT = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _parameter(name: str) -> JsonDict:
    schema = _PARAM_SCHEMAS.get(name, _SEGMENT)
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": dict(schema),
        "example": EXAMPLE_PARAMETERS[name],
    }


#: One example value per path parameter, and one request body per operation that takes one.
#: They make a working conversation: register a node, upsert a graph that uses it (VALID),
#: trigger it, claim its state, report on the claimed state's id
#: (tests/fake_state_manager/http/test_openapi.py replays them). Sent as they are, the way
#: schemathesis's examples phase does, the state operations name no state (404).
EXAMPLE_NAMESPACE = "example"
EXAMPLE_PARAMETERS: dict[str, Any] = {
    "namespace_name": EXAMPLE_NAMESPACE,
    "graph_name": "greet",
    "state_id": "0123456789abcdef01234567",
    "node_id": "0123456789abcdef01234567",
    "run_id": "5f0c6a52-3d1b-4b8e-9a51-7c2d8e4f9b10",
    "page": 1,
    "size": 10,
}
_GREETING_SCHEMA = {
    "type": "object",
    "properties": {"greeting": {"type": "string"}},
    "required": ["greeting"],
}
EXAMPLE_BODIES: dict[str, JsonDict] = {
    "register_nodes": {
        "runtime_name": "example-runtime",
        "nodes": [
            {
                "name": "Greet",
                "inputs_schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"],
                },
                "outputs_schema": _GREETING_SCHEMA,
                "secrets": [],
            }
        ],
    },
    "upsert_graph_template": {
        "secrets": {"token": "s3cr3t"},
        "nodes": [
            {
                "node_name": "Greet",
                "namespace": EXAMPLE_NAMESPACE,
                "identifier": "greet",
                "inputs": {"name": "world"},
                "next_nodes": [],
            }
        ],
        "retry_policy": {"max_retries": 2, "strategy": "EXPONENTIAL", "backoff_factor": 1000},
        "store_config": {"required_keys": [], "default_values": {}},
        "triggers": [],
    },
    "trigger_graph": {"inputs": {}, "store": {}, "start_delay": 0},
    "enqueue_states": {"nodes": ["Greet"], "batch_size": 10},
    "executed_state": {"outputs": [{"greeting": "hello world"}]},
    "errored_state": {"error": "something went wrong"},
    "prune_state": {"data": {"reason": "nothing left to do"}},
    "re_enqueue_after_state": {"enqueue_after": 60_000},
    "manual_retry_state": {"fanout_id": "b9e0c2f4-6d1a-4c3e-8f5b-2a7d9c1e3f60"},
}


_SAME_NAMESPACE = {"namespace_name": "$request.path.namespace_name"}
_STATE_OPERATIONS = (
    "executed_state",
    "errored_state",
    "prune_state",
    "re_enqueue_after_state",
    "manual_retry_state",
    "get_secrets",
)

#: OpenAPI links of each success answer: operation id -> {target operation id: parameters}. They
#: say where the ids of one answer can be used next (and drive schemathesis's stateful phase).
LINKS: dict[str, dict[str, dict[str, str]]] = {
    "register_nodes": {"list_nodes": _SAME_NAMESPACE},
    "upsert_graph_template": {
        target: {**_SAME_NAMESPACE, "graph_name": "$request.path.graph_name"}
        for target in ("get_graph_template", "trigger_graph")
    },
    "trigger_graph": {
        "get_graph_structure": {**_SAME_NAMESPACE, "run_id": "$response.body#/run_id"},
    },
    "enqueue_states": {
        target: {**_SAME_NAMESPACE, "state_id": "$response.body#/states/0/state_id"}
        for target in _STATE_OPERATIONS
    },
    "manual_retry_state": {
        target: {**_SAME_NAMESPACE, "state_id": "$response.body#/id"}
        for target in _STATE_OPERATIONS
    },
    "get_graph_structure": {
        "get_node_run_details": {
            **_SAME_NAMESPACE,
            "graph_name": "$response.body#/graph_name",
            "run_id": "$request.path.run_id",
            "node_id": "$response.body#/nodes/0/id",
        }
    },
}


def _links(endpoint: Endpoint) -> JsonDict:
    return {
        target: {"operationId": target, "parameters": dict(parameters)}
        for target, parameters in LINKS.get(endpoint.name, {}).items()
    }


def _operation(endpoint: Endpoint, refs: Refs) -> JsonDict:
    def describe(status: int) -> str:
        if status == endpoint.status:
            return "Successful Response"
        return _description(endpoint, status)

    operation: JsonDict = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "security": [{"APIKeyHeader": []}],
        "responses": _responses(response_models(endpoint), refs, describe),
    }
    if links := _links(endpoint):
        operation["responses"][str(endpoint.status)]["links"] = links
    parameters = [_parameter(name) for name in _PARAM.findall(endpoint.path)]
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        content = _json_content(refs[(endpoint.body, "validation")])
        content["application/json"]["example"] = EXAMPLE_BODIES[endpoint.name]
        operation["requestBody"] = {"required": True, "content": content}
    return operation


def openapi_document(*, title: str = "fake_state_manager", version: str = VERSION) -> JsonDict:
    """Build the document (pure function of the endpoint table; cheap enough to cache once)."""
    components: JsonDict = {}
    refs = _model_schemas(components)
    health: dict[int, type[BaseModel]] = {200: r.HealthResponse}
    health |= {status: ERROR_MODELS[status] for status in _MIDDLEWARE_STATUSES}
    paths: JsonDict = {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness (no auth)",
                "responses": _responses(
                    health,
                    refs,
                    lambda s: "Successful Response" if s == 200 else _DESCRIPTIONS[s],
                ),
            }
        }
    }
    for endpoint in ENDPOINTS:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "The Exosphere state-manager API (v0), served by exo-ref's in-memory "
            "fake. See the wire contract for semantics. Datetimes are ISO-8601 without offset "
            "(UTC), e.g. 2026-01-01T00:00:00.123000.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"}
            },
        },
    }

"""``/openapi.json``: an OpenAPI 3.1 document of the ``/v0`` API (issue: dev server).

Generated from the same pydantic models that validate requests (:data:`ENDPOINTS`), so the
document cannot drift from what the routes accept. Shapes follow FastAPI's documents (``422`` with
``HTTPValidationError``, ``APIKeyHeader`` security scheme) because that is what upstream serves.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from exo_ref import VERSION
from fake_state_manager._http.routes import ENDPOINTS, Endpoint

__all__ = ["openapi_document"]

JsonDict = dict[str, Any]
_REF = "#/components/schemas/{model}"
_PARAM = re.compile(r"{(\w+)}")

_VALIDATION_SCHEMAS: JsonDict = {
    "ValidationError": {
        "title": "ValidationError",
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {
                "title": "Location",
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
            "input": {"title": "Input"},
            "ctx": {"title": "Context", "type": "object"},
        },
    },
    "HTTPValidationError": {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {
                "title": "Detail",
                "type": "array",
                "items": {"$ref": "#/components/schemas/ValidationError"},
            }
        },
    },
    "HTTPError": {
        "title": "HTTPError",
        "type": "object",
        "required": ["detail"],
        "properties": {"detail": {"title": "Detail", "type": "string"}},
    },
}


def _json_content(schema: JsonDict) -> JsonDict:
    return {"application/json": {"schema": schema}}


Refs = dict[tuple[Any, JsonSchemaMode], JsonDict]


def _model_schemas(components: JsonDict) -> Refs:
    """One pass over every model: requests as validated, responses as serialised.

    ``models_json_schema`` shares and de-duplicates the ``$defs`` (naming input and output
    variants apart when they differ), which become the document's components.
    """
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for endpoint in ENDPOINTS:
        if endpoint.body is not None:
            wanted.append((endpoint.body, "validation"))
        if endpoint.response is not None:
            wanted.append((endpoint.response, "serialization"))
    refs, definitions = models_json_schema(wanted, ref_template=_REF)
    components.update(definitions.get("$defs", {}))
    return dict(refs)


def _operation(endpoint: Endpoint, refs: Refs) -> JsonDict:
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "integer" if name in endpoint.int_params else "string"},
        }
        for name in _PARAM.findall(endpoint.path)
    ]
    success: JsonDict = {"description": "Successful Response"}
    if endpoint.response is not None:
        success["content"] = _json_content(refs[(endpoint.response, "serialization")])
    else:
        success["content"] = _json_content({"type": "object"})
    error = _json_content({"$ref": _REF.format(model="HTTPError")})
    operation: JsonDict = {
        "operationId": endpoint.name,
        "summary": endpoint.summary,
        "security": [{"APIKeyHeader": []}],
        "responses": {
            str(endpoint.status): success,
            "401": {"description": "Invalid API key", "content": error},
            "422": {
                "description": "Validation Error",
                "content": _json_content({"$ref": _REF.format(model="HTTPValidationError")}),
            },
        },
    }
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _json_content(refs[(endpoint.body, "validation")]),
        }
    return operation


def openapi_document(*, title: str = "fake_state_manager", version: str = VERSION) -> JsonDict:
    """Build the document (pure function of the endpoint table; cheap enough to cache once)."""
    components: JsonDict = dict(_VALIDATION_SCHEMAS)
    refs = _model_schemas(components)
    paths: JsonDict = {
        "/health": {
            "get": {
                "operationId": "health",
                "summary": "Liveness (no auth)",
                "responses": {
                    "200": {
                        "description": "Successful Response",
                        "content": _json_content(
                            {
                                "type": "object",
                                "properties": {"message": {"type": "string", "const": "OK"}},
                            }
                        ),
                    }
                },
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
            "fake. See the wire contract for semantics.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "x-api-key"}
            },
        },
    }

"""``/openapi.json``: an OpenAPI 3.1 document of the ``/v0`` API (issue: dev server).

Generated from the same pydantic models that validate requests (:data:`ENDPOINTS`), so the
document cannot drift from what the routes accept. Shapes follow FastAPI's documents (``422`` with
``HTTPValidationError``, ``APIKeyHeader`` security scheme) because that is what upstream serves.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel

from fake_state_manager._routes import ENDPOINTS, Endpoint

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


def _schema_ref(model: type[BaseModel], components: JsonDict) -> JsonDict:
    schema = model.model_json_schema(ref_template=_REF)
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(model.__name__, schema)
    return {"$ref": _REF.format(model=model.__name__)}


def _json_content(schema: JsonDict) -> JsonDict:
    return {"application/json": {"schema": schema}}


def _operation(endpoint: Endpoint, components: JsonDict) -> JsonDict:
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
        success["content"] = _json_content(_schema_ref(endpoint.response, components))
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
            "content": _json_content(_schema_ref(endpoint.body, components)),
        }
    return operation


def openapi_document(*, title: str = "fake_state_manager", version: str = "0.1.0") -> JsonDict:
    """Build the document (pure function of the endpoint table; cheap enough to cache once)."""
    components: JsonDict = dict(_VALIDATION_SCHEMAS)
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
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(
            endpoint, components
        )
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

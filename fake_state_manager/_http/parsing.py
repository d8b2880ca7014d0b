"""Request parsing with FastAPI's observable behaviour (contract §1.2, §1.3).

Upstream is a FastAPI app, so the order of checks and the shape of 422 bodies are FastAPI's:

1. a body that is not valid JSON → 422 ``json_invalid`` (before auth, even without a key);
2. a missing or wrong ``x-api-key`` → 401 ``{"detail": "Invalid API key"}``;
3. path and body schema errors → 422 ``{"detail": [{"type", "loc", "msg", "input", "ctx"?}]}``
   with ``loc`` prefixed by ``"path"`` or ``"body"``.

This module knows nothing about the endpoints; :mod:`fake_state_manager._http.routes` uses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from fake_state_manager._json import JsonDict

__all__ = [
    "MAX_JSON_DEPTH",
    "MISSING",
    "RequestError",
    "json_response",
    "parse_json_body",
    "validate_body",
    "validate_int_path",
]

M = TypeVar("M", bound=BaseModel)


# Upstream stores bodies in MongoDB, whose documents nest at most 100 levels (deeper ones fail
# the insert: a 500). The fake refuses them up front, so no recursive step can overflow.
MAX_JSON_DEPTH = 100
_PARSE_ERROR = "There was an error parsing the body"


class _Missing:
    """Marker for "the request had no body" (distinct from a JSON ``null``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class RequestError(Exception):
    """A finished error answer: status plus the JSON body FastAPI would send."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body

    def response(self) -> Response:
        return json_response(self.body, self.status)


def _encode(content: Any) -> bytes:
    # ensure_ascii: a lone surrogate (legal in a JSON string escape) cannot be UTF-8 encoded.
    # allow_nan: Python's json accepts NaN/Infinity in request bodies (as upstream does), and a
    # value stored from a body may be echoed back later; refusing it here would be a 500
    # (docs/fidelity.md, §1.3).
    return json.dumps(content, ensure_ascii=True, allow_nan=True, separators=(",", ":")).encode()


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response without Starlette's ``allow_nan=False`` (see :func:`_encode`)."""
    return Response(
        _encode(content), status_code=status, headers=headers, media_type="application/json"
    )


def _is_json_content_type(value: str | None) -> bool:
    # FastAPI parses the body as JSON when there is no content type, or for application/json
    # and application/*+json; anything else is validated as raw bytes (and fails the schema).
    if not value:
        return True
    main = value.split(";", 1)[0].strip().lower()
    return main == "application/json" or (
        main.startswith("application/") and main.endswith("+json")
    )


async def parse_json_body(request: Request) -> Any:
    """Read and parse the body the way FastAPI does, raising the check-1 errors (§1.2).

    Returns:
        :data:`MISSING` for an empty body, the raw text for a non-JSON content type, else the
        parsed JSON value.

    Raises:
        RequestError: 422 ``json_invalid`` for a syntax error; 400 for bytes that are not UTF-8
            or JSON nested deeper than :data:`MAX_JSON_DEPTH` levels.
    """
    raw = await request.body()
    if not raw:
        return MISSING
    if not _is_json_content_type(request.headers.get("content-type")):
        return raw.decode("utf-8", errors="replace")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RequestError(
            422,
            {
                "detail": [
                    {
                        "type": "json_invalid",
                        "loc": ["body", exc.pos],
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ]
            },
        ) from None
    except (ValueError, RecursionError):
        # Bytes that are not UTF-8, or nesting too deep to parse: FastAPI's catch-all answer.
        raise RequestError(400, {"detail": _PARSE_ERROR}) from None
    # Cheap pre-check (C speed): a body with few brackets cannot be deeply nested.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _deeper_than(data, MAX_JSON_DEPTH):
        raise RequestError(
            400, {"detail": f"{_PARSE_ERROR}: JSON nested deeper than {MAX_JSON_DEPTH} levels"}
        )
    return data


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _jsonable(value: Any) -> Any:
    """Make pydantic's ``ctx``/``input`` values JSON-ready the way FastAPI's encoder does."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, BaseException):
        return {}  # FastAPI's jsonable_encoder renders exception objects as {}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, Sequence | set | frozenset) and not isinstance(value, bytes):
        return [_jsonable(v) for v in value]
    return str(value)


def _errors(exc: ValidationError, prefix: Sequence[str | int]) -> list[JsonDict]:
    out: list[JsonDict] = []
    for error in exc.errors(include_url=False):
        item: JsonDict = {
            "type": error["type"],
            "loc": [*prefix, *error["loc"]],
            "msg": error["msg"],
            "input": _jsonable(error["input"]),
        }
        if "ctx" in error:
            item["ctx"] = _jsonable(error["ctx"])
        out.append(item)
    return out


def validate_body(model: type[M], data: Any, errors: list[JsonDict]) -> M | None:
    """Validate a parsed body against ``model``; append FastAPI-shaped errors on failure."""
    if data is MISSING or data is None:
        errors.append({"type": "missing", "loc": ["body"], "msg": "Field required", "input": None})
        return None
    try:
        # from_attributes=True: FastAPI validates this way, so a non-object body reports
        # "model_attributes_type" exactly as upstream does.
        return model.model_validate(data, from_attributes=True)
    except ValidationError as exc:
        errors.extend(_errors(exc, ["body"]))
        return None


_INT = TypeAdapter(int)


def validate_int_path(name: str, value: str, errors: list[JsonDict]) -> int:
    """Validate an ``int`` path parameter (e.g. runs ``page``/``size``, §2.14)."""
    try:
        return _INT.validate_python(value)
    except ValidationError as exc:
        errors.extend(_errors(exc, ["path", name]))
        return 0

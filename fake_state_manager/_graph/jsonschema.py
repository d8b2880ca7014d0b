"""The little JSON Schema reading the fake needs (contract §3.5 step 3a, §4.4).

Registered nodes carry ``inputs_schema`` / ``outputs_schema`` as produced by pydantic's
``model_json_schema()``. Upstream turns them back into pydantic models and asks whether each
field's annotation is exactly ``str``; we read the schema directly:

- the fields are the keys of ``properties``, in order;
- a field is a *plain string* when its schema says ``"type": "string"`` and nothing that would
  turn it into another annotation: no ``anyOf``/``oneOf``/``allOf``/``$ref`` (``Optional[str]``
  is ``anyOf`` with ``null``), no ``format`` (``date-time`` becomes ``datetime``), no ``enum`` or
  ``const`` (``Literal``). A ``default`` does not matter: upstream keeps ``str`` for those too;
- the required fields are ``required``, filtered to strings.

Malformed schemas never raise: they simply have no (or fewer) fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "field_names",
    "field_schema",
    "is_plain_string",
    "is_string_field",
    "required_fields",
]

_NOT_PLAIN_KEYS = frozenset({"anyOf", "oneOf", "allOf", "$ref", "format", "enum", "const"})


def _properties(schema: object) -> Mapping[str, Any]:
    if not isinstance(schema, Mapping):
        return {}
    properties = schema.get("properties")
    return properties if isinstance(properties, Mapping) else {}


def field_names(schema: object) -> list[str]:
    """The field names of an object schema, in declaration order."""
    return [name for name in _properties(schema) if isinstance(name, str)]


def field_schema(schema: object, name: str) -> Mapping[str, Any] | None:
    """The sub-schema of field ``name``, or None if there is no such field."""
    sub = _properties(schema).get(name)
    return sub if isinstance(sub, Mapping) else None


def is_plain_string(sub_schema: object) -> bool:
    """True when a field schema means exactly ``str`` (see the module docstring)."""
    if not isinstance(sub_schema, Mapping):
        return False
    return sub_schema.get("type") == "string" and not (_NOT_PLAIN_KEYS & sub_schema.keys())


def is_string_field(schema: object, name: str) -> bool:
    """True when ``schema`` has a field ``name`` that is a plain string."""
    return is_plain_string(field_schema(schema, name))


def required_fields(schema: object) -> list[str]:
    """The ``required`` field names (strings only), in order."""
    if not isinstance(schema, Mapping):
        return []
    required = schema.get("required")
    if not isinstance(required, list):
        return []
    return [name for name in required if isinstance(name, str)]

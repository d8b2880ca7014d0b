"""Tests of the JSON Schema helpers (contract §3.5 step 3a, §4.4)."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel

from fake_state_manager._graph import jsonschema as js


class Inputs(BaseModel):
    name: str
    greeting: str = "hello"
    maybe: str | None = None
    count: int = 0
    mode: Literal["a", "b"] = "a"


SCHEMA = Inputs.model_json_schema()


def test_field_names_keep_declaration_order() -> None:
    assert js.field_names(SCHEMA) == ["name", "greeting", "maybe", "count", "mode"]


def test_required_fields() -> None:
    assert js.required_fields(SCHEMA) == ["name"]


@pytest.mark.parametrize(
    ("name", "plain"),
    [
        pytest.param("name", True, id="str"),
        pytest.param("greeting", True, id="str-with-default"),
        pytest.param("maybe", False, id="optional-str"),
        pytest.param("count", False, id="int"),
        pytest.param("mode", False, id="literal"),
        pytest.param("absent", False, id="absent"),
    ],
)
def test_is_string_field_on_pydantic_schemas(name: str, plain: bool) -> None:
    assert js.is_string_field(SCHEMA, name) is plain


@pytest.mark.parametrize(
    "sub",
    [
        pytest.param({"type": ["string", "null"]}, id="type-list"),
        pytest.param({"$ref": "#/$defs/X"}, id="ref"),
        pytest.param({"type": "string", "format": "uuid"}, id="format"),
        pytest.param({"type": "string", "enum": ["a"]}, id="enum"),
        pytest.param({"allOf": [{"type": "string"}]}, id="allOf"),
        pytest.param("string", id="not-a-mapping"),
        pytest.param({}, id="empty"),
    ],
)
def test_not_plain_strings(sub: Any) -> None:
    assert js.is_plain_string(sub) is False


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(None, id="none"),
        pytest.param([], id="list"),
        pytest.param({"properties": []}, id="properties-list"),
        pytest.param({"properties": {"a": "x"}, "required": "a"}, id="odd-values"),
    ],
)
def test_malformed_schemas_never_raise(schema: Any) -> None:
    js.field_names(schema)
    assert js.required_fields(schema) == []
    assert js.field_schema(schema, "a") is None
    assert js.is_string_field(schema, "a") is False


def test_empty_model_has_no_fields() -> None:
    class Empty(BaseModel):
        """Docstring becomes the description (contract §8.3)."""

    assert js.field_names(Empty.model_json_schema()) == []

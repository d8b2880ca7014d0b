"""exo_ref._validation: node classes are checked before anything is sent (contract §8.2)."""

from __future__ import annotations

from typing import Optional

import pytest
from pydantic import BaseModel

from exo_ref import BaseNode, NodeValidationError, Runtime
from exo_ref._validation import validate_nodes

from .helpers import EchoNode


class NotNode:
    pass


class NoExecute(BaseNode):
    pass


class WrongTypes(BaseNode):
    class Inputs(BaseModel):
        count: int
        maybe: Optional[str]  # noqa: UP045 - the upstream message shows this spelling

    class Secrets(BaseModel):
        token: str

    async def execute(self) -> None:
        return None


class BadModel(BaseNode):
    Outputs = dict  # type: ignore[assignment]

    async def execute(self) -> None:
        return None


def problems(*nodes: object) -> list[str]:
    with pytest.raises(NodeValidationError) as info:
        validate_nodes(nodes)
    assert str(info.value).startswith("Following errors while validating nodes: ")
    assert isinstance(info.value, ValueError)
    return info.value.problems


def test_valid_nodes_and_empty_list_pass() -> None:
    assert validate_nodes([EchoNode]) == [EchoNode]
    assert validate_nodes([]) == []


def test_non_subclass_reports_every_missing_piece() -> None:
    assert problems(NotNode) == [
        "NotNode does not inherit from exo_ref.BaseNode",
        "NotNode does not have an Inputs class",
        "NotNode does not have an Inputs class that inherits from pydantic.BaseModel",
        "NotNode does not have an Outputs class",
        "NotNode does not have an Outputs class that inherits from pydantic.BaseModel",
        "NotNode does not have an Secrets class",
        "NotNode does not have an Secrets class that inherits from pydantic.BaseModel",
    ]


def test_field_types_must_be_exactly_str() -> None:
    assert problems(WrongTypes) == [
        "WrongTypes.Inputs field 'count' must be of type str, got <class 'int'>",
        "WrongTypes.Inputs field 'maybe' must be of type str, got typing.Optional[str]",
    ]


def test_everything_is_reported_in_one_error() -> None:
    duplicate = type("EchoNode", (EchoNode,), {})
    found = problems(EchoNode, duplicate, NoExecute, BadModel, EchoNode())
    assert "NoExecute does not implement execute(self)" in found
    assert "BadModel does not have an Outputs class that inherits from pydantic.BaseModel" in found
    assert "Duplicate node class names found: ['EchoNode']" in found
    assert any("is not a class: pass node classes, not instances" in p for p in found)


def test_runtime_validates_nodes_after_settings() -> None:
    with pytest.raises(ValueError, match="Batch size should be at least 1"):
        Runtime("ns", "rt", [NotNode], "http://sm", "k", batch_size=0)  # type: ignore[list-item]
    with pytest.raises(NodeValidationError, match="NotNode does not inherit"):
        Runtime("ns", "rt", [NotNode], "http://sm", "k")  # type: ignore[list-item]

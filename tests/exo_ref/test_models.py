"""Tests of the SDK graph models (contract §8.8, §4.1, §5)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from exo_ref import (
    CronTrigger,
    GraphNodeModel,
    RetryPolicyModel,
    RetryStrategyEnum,
    StoreConfigModel,
    UnitesModel,
    UnitesStrategyEnum,
)


def _messages(error: ValidationError) -> list[str]:
    return [str(e["msg"]) for e in error.errors()]


def test_enums_are_str_enums_with_upstream_members() -> None:
    assert [m.value for m in UnitesStrategyEnum] == ["ALL_SUCCESS", "ALL_DONE"]
    assert [m.value for m in RetryStrategyEnum] == [
        "EXPONENTIAL",
        "EXPONENTIAL_FULL_JITTER",
        "EXPONENTIAL_EQUAL_JITTER",
        "LINEAR",
        "LINEAR_FULL_JITTER",
        "LINEAR_EQUAL_JITTER",
        "FIXED",
        "FIXED_FULL_JITTER",
        "FIXED_EQUAL_JITTER",
    ]
    assert UnitesStrategyEnum.ALL_DONE == "ALL_DONE"
    assert isinstance(RetryStrategyEnum.FIXED, str)


def test_graph_node_dump_is_the_upstream_wire_body() -> None:
    node = GraphNodeModel(node_name="N", namespace="ns", identifier="a")
    assert node.model_dump(mode="json") == {
        "node_name": "N",
        "namespace": "ns",
        "identifier": "a",
        "inputs": {},
        "next_nodes": None,
        "unites": None,
    }
    united = GraphNodeModel(
        node_name="N",
        namespace="ns",
        identifier="b",
        inputs={"x": "1"},
        next_nodes=["c"],
        unites=UnitesModel(identifier="a"),
    )
    assert united.model_dump(mode="json")["unites"] == {
        "identifier": "a",
        "strategy": "ALL_SUCCESS",
    }


def test_graph_node_trims_names_but_not_namespace() -> None:
    node = GraphNodeModel(
        node_name="  N ",
        namespace=" ns ",
        identifier=" a ",
        next_nodes=[" b ", "c"],
        unites={"identifier": " x ", "strategy": "ALL_DONE"},
    )
    assert (node.node_name, node.namespace, node.identifier) == ("N", " ns ", "a")
    assert node.next_nodes == ["b", "c"]
    assert node.unites == UnitesModel(identifier="x", strategy=UnitesStrategyEnum.ALL_DONE)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"node_name": " "}, "Value error, Node name cannot be empty", id="name"),
        pytest.param(
            {"identifier": ""}, "Value error, Node identifier cannot be empty", id="identifier"
        ),
        pytest.param(
            {"identifier": " store "},
            "Value error, Node identifier cannot be reserved word 'store'",
            id="store",
        ),
        pytest.param(
            {"next_nodes": ["b", " "]},
            "Value error, Next node identifier cannot be empty",
            id="next-empty",
        ),
        pytest.param(
            {"next_nodes": ["b", " b"]},
            "Value error, Next node identifier b is not unique",
            id="next-duplicate",
        ),
        pytest.param(
            {"next_nodes": ["", "b", "b"]},
            "Value error, Next node identifier cannot be empty\n"
            "Next node identifier b is not unique",
            id="next-all-errors-joined",
        ),
        pytest.param(
            {"unites": {"identifier": "  "}},
            "Value error, Unites identifier cannot be empty",
            id="unites-empty",
        ),
    ],
)
def test_graph_node_rejects_with_upstream_messages(changes: dict[str, Any], message: str) -> None:
    body: dict[str, Any] = {"node_name": "N", "namespace": "ns", "identifier": "a"}
    with pytest.raises(ValidationError) as info:
        GraphNodeModel.model_validate(body | changes)
    assert _messages(info.value) == [message]


def test_graph_node_accepts_any_input_values_and_ignores_unknown_fields() -> None:
    node = GraphNodeModel.model_validate(
        {"node_name": "N", "namespace": "ns", "identifier": "a", "inputs": {"n": 1}, "x": 2}
    )
    assert node.inputs == {"n": 1}
    assert "x" not in node.model_dump()


def test_retry_policy_defaults() -> None:
    assert RetryPolicyModel().model_dump(mode="json") == {
        "max_retries": 3,
        "strategy": "EXPONENTIAL",
        "backoff_factor": 2000,
        "exponent": 2,
        "max_delay": None,
    }


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"max_retries": -1}, id="max-retries-negative"),
        pytest.param({"backoff_factor": 0}, id="backoff-zero"),
        pytest.param({"exponent": 0}, id="exponent-zero"),
        pytest.param({"max_delay": 0}, id="max-delay-zero"),
        pytest.param({"strategy": "RANDOM"}, id="unknown-strategy"),
        pytest.param({"max_retries": 1.5}, id="fractional"),
    ],
)
def test_retry_policy_rejects_out_of_range(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RetryPolicyModel.model_validate(changes)


def test_retry_policy_accepts_boundaries() -> None:
    policy = RetryPolicyModel(max_retries=0, backoff_factor=1, exponent=1, max_delay=1)
    assert (policy.max_retries, policy.max_delay) == (0, 1)


def test_store_config_trims_keys_and_keeps_defaults() -> None:
    config = StoreConfigModel(required_keys=[" a ", "b"], default_values={" c ": "1"})
    assert config.required_keys == ["a", "b"]
    assert config.default_values == {"c": "1"}
    assert StoreConfigModel().model_dump() == {"required_keys": [], "default_values": {}}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        pytest.param(
            "required_keys", [" "], "Key cannot be empty or contain only whitespace", id="empty"
        ),
        pytest.param("required_keys", ["a.b"], "Key 'a.b' cannot contain '.' character", id="dot"),
        pytest.param("required_keys", ["a", " a"], "Key 'a' is duplicated", id="dup"),
        pytest.param(
            "required_keys",
            ["", "x.y", "k", "k"],
            "Key cannot be empty or contain only whitespace\n"
            "Key 'x.y' cannot contain '.' character\nKey 'k' is duplicated",
            id="all-joined",
        ),
        pytest.param(
            "default_values",
            {"": "v"},
            "Key cannot be empty or contain only whitespace",
            id="default-empty",
        ),
        pytest.param(
            "default_values",
            {"a.b": "v"},
            "Key 'a.b' cannot contain '.' character",
            id="default-dot",
        ),
        pytest.param(
            "default_values", {"a": "1", "a ": "2"}, "Key 'a' is duplicated", id="default-dup"
        ),
    ],
)
def test_store_config_key_rules(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        StoreConfigModel.model_validate({field: value})
    assert _messages(info.value) == [f"Value error, {message}"]


def test_store_config_default_values_must_be_strings() -> None:
    with pytest.raises(ValidationError) as info:
        StoreConfigModel.model_validate({"default_values": {"k": 1}})
    assert info.value.errors()[0]["type"] == "string_type"


def test_cron_trigger_is_unvalidated_expression_only() -> None:
    assert CronTrigger(expression="not cron").model_dump() == {"expression": "not cron"}

"""Tests of background graph verification (contract §4.4)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from fake_state_manager._graph.models import NodeTemplate
from fake_state_manager._graph.verification import verify_graph

STR = {"type": "string", "title": "X"}


def schema(**fields: dict[str, Any]) -> dict[str, Any]:
    return {"properties": fields, "required": list(fields), "title": "M", "type": "object"}


@dataclass
class Registered:
    inputs_schema: dict[str, Any] = field(default_factory=lambda: schema())
    outputs_schema: dict[str, Any] = field(default_factory=lambda: schema())
    secrets: list[str] = field(default_factory=list)


def n(
    ident: str,
    name: str = "Node",
    inputs: dict[str, Any] | None = None,
    nxt: list[str] | None = None,
    namespace: str = "ns",
) -> NodeTemplate:
    return NodeTemplate.model_validate(
        {
            "node_name": name,
            "namespace": namespace,
            "identifier": ident,
            "inputs": inputs or {},
            "next_nodes": nxt,
            "unites": None,
        }
    )


def lookup_from(registry: dict[tuple[str, str], Any]) -> Any:
    return lambda name, namespace: registry.get((name, namespace))


def test_valid_graph_has_no_errors() -> None:
    registry = {
        ("Fetch", "ns"): Registered(
            inputs_schema=schema(url=STR), outputs_schema=schema(body=STR), secrets=["token"]
        ),
        ("Print", "ns"): Registered(inputs_schema=schema(text=STR)),
    }
    nodes = [
        n("f", "Fetch", {"url": "http://x", "extra": "ok"}, ["p"]),
        n("p", "Print", {"text": "${{ f.outputs.body }} ${{ store.k }}"}),
    ]
    assert verify_graph(nodes, ["token", "unused"], lookup_from(registry)) == []


def test_registered_nodes_may_be_mappings() -> None:
    registry = {("Node", "ns"): {"inputs_schema": schema(a=STR), "outputs_schema": {}}}
    assert verify_graph([n("r", inputs={"a": "1"})], [], lookup_from(registry)) == []
    assert verify_graph([n("r")], [], lookup_from(registry)) == [
        "Input a in node Node in namespace ns is not present in the graph template"
    ]


def test_unregistered_node_is_reported_twice_like_upstream() -> None:
    registry = {("Known", "ns"): Registered()}
    nodes = [n("r", "Known", nxt=["m"]), n("m", "Missing", namespace="other")]
    assert verify_graph(nodes, [], lookup_from(registry)) == [
        "Node Missing in namespace other does not exist.",
        "Node Missing in namespace other does not exist",
    ]


def test_missing_secrets_are_the_union_over_registered_nodes_minus_template_names() -> None:
    registry = {
        ("A", "ns"): Registered(secrets=["s1", "s2"]),
        ("B", "ns"): Registered(secrets=["s2", "s3"]),
    }
    nodes = [n("a", "A", nxt=["b"]), n("b", "B")]
    assert verify_graph(nodes, ["s2"], lookup_from(registry)) == [
        "Secret s1 is required but not present in the graph template",
        "Secret s3 is required but not present in the graph template",
    ]


@pytest.mark.parametrize(
    ("field_schema", "inputs", "expected"),
    [
        pytest.param(
            {"anyOf": [{"type": "string"}, {"type": "null"}]},
            {"f": "x"},
            ["Input f in node Node in namespace ns is not a string"],
            id="optional-str",
        ),
        pytest.param(
            {"type": "integer"},
            {},
            ["Input f in node Node in namespace ns is not a string"],
            id="int-reported-before-presence",
        ),
        pytest.param(
            {"type": "string", "default": "d"},
            {},
            ["Input f in node Node in namespace ns is not present in the graph template"],
            id="default-still-required-in-template",
        ),
        pytest.param(
            {"type": "string", "format": "date-time"},
            {"f": "x"},
            ["Input f in node Node in namespace ns is not a string"],
            id="formatted-string",
        ),
        pytest.param({"type": "string"}, {"f": "x"}, [], id="plain"),
    ],
)
def test_input_field_checks(
    field_schema: dict[str, Any], inputs: dict[str, Any], expected: list[str]
) -> None:
    registry = {("Node", "ns"): Registered(inputs_schema=schema(f=field_schema))}
    assert verify_graph([n("r", inputs=inputs)], [], lookup_from(registry)) == expected


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        pytest.param("${{ p.outputs.out }}", [], id="ok"),
        pytest.param(
            "${{ p.outputs.nope }}",
            ["Field nope in node Producer in namespace ns does not exist"],
            id="missing-field",
        ),
        pytest.param(
            "${{ p.outputs.num }}",
            ["Field num in node Producer in namespace ns is not a string"],
            id="non-string-field",
        ),
        pytest.param(
            "${{ ghost.outputs.out }}",
            ["Node ghost does not exist in the graph template"],
            id="unknown-identifier",
        ),
        pytest.param("${{ store.anything }}", [], id="store-is-skipped"),
    ],
)
def test_output_references(reference: str, expected: list[str]) -> None:
    registry = {
        ("Producer", "ns"): Registered(
            outputs_schema=schema(out=STR, num={"type": "integer"}),
        ),
        ("Consumer", "ns"): Registered(inputs_schema=schema(v=STR)),
    }
    nodes = [n("p", "Producer", nxt=["c"]), n("c", "Consumer", {"v": reference})]
    assert verify_graph(nodes, [], lookup_from(registry)) == expected


def test_reference_to_an_unregistered_producer() -> None:
    registry = {("Consumer", "ns"): Registered(inputs_schema=schema(v=STR))}
    nodes = [n("p", "Producer", nxt=["c"]), n("c", "Consumer", {"v": "${{ p.outputs.o }}"})]
    assert verify_graph(nodes, [], lookup_from(registry)) == [
        "Node Producer in namespace ns does not exist.",
        "Node Producer in namespace ns does not exist",
        "Node Producer in namespace ns does not exist",
    ]


def test_groups_come_in_upstream_order() -> None:
    registry = {("A", "ns"): Registered(inputs_schema=schema(i=STR), secrets=["s"])}
    nodes = [n("a", "A", nxt=["b"]), n("b", "B")]
    assert verify_graph(nodes, [], lookup_from(registry)) == [
        "Node B in namespace ns does not exist.",
        "Secret s is required but not present in the graph template",
        "Input i in node A in namespace ns is not present in the graph template",
        "Node B in namespace ns does not exist",
    ]


def test_lookup_is_called_once_per_distinct_node() -> None:
    calls: list[tuple[str, str]] = []

    def lookup(name: str, namespace: str) -> Registered:
        calls.append((name, namespace))
        return Registered()

    nodes = [n("a", nxt=["b"]), n("b", nxt=["c"]), n("c", "Other")]
    assert verify_graph(nodes, [], lookup) == []
    assert calls == [("Node", "ns"), ("Other", "ns")]


def test_unexpected_failure_becomes_one_error() -> None:
    def lookup(name: str, namespace: str) -> Registered:
        raise RuntimeError("db down")

    assert verify_graph([n("a")], [], lookup) == [
        "Validation failed due to unexpected error: db down"
    ]


def test_new_identifiers_of_an_update_are_known_immediately() -> None:
    # Upstream's stale node cache would report "Node q does not exist in the graph template"
    # on the first upsert that introduces q; we verify the template as given.
    registry = {("Node", "ns"): Registered(outputs_schema=schema(x=STR))}
    nodes = [n("q", nxt=["r"]), n("r", inputs={"v": "${{ q.outputs.x }}"})]
    assert verify_graph(nodes, [], lookup_from(registry)) == []

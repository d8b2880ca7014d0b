"""Tests of structural graph validation (contract §4.3)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fake_state_manager._graph.checks import (
    DETAIL_PREFIX,
    GraphCheckError,
    check_graph,
    compute_structure,
)
from fake_state_manager._graph.models import NodeTemplate, StoreConfig


def n(
    ident: str,
    nxt: list[str] | None = None,
    inputs: dict[str, Any] | None = None,
    unites: str | None = None,
) -> NodeTemplate:
    # The checks take validated models, as the request body gives them (contract §4.1).
    return NodeTemplate.model_validate(
        {
            "node_name": "Node",
            "namespace": "ns",
            "identifier": ident,
            "inputs": inputs or {},
            "next_nodes": nxt,
            "unites": None if unites is None else {"identifier": unites},
        }
    )


def out(ident: str, field: str = "x") -> str:
    return f"${{{{ {ident}.outputs.{field} }}}}"


def failure(nodes: list[NodeTemplate], **kwargs: Any) -> GraphCheckError:
    with pytest.raises(GraphCheckError) as info:
        check_graph(nodes, **kwargs)
    return info.value


def parents_of(nodes: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {k: set(v) for k, v in compute_structure(nodes).parents.items()}


# -- messages, one group at a time -----------------------------------------------------------


@pytest.mark.parametrize(
    ("nodes", "messages"),
    [
        pytest.param(
            [n("a", ["b"]), n("b"), n("b"), n("a")],
            ["Node identifier b is not unique\nNode identifier a is not unique"],
            id="duplicate-identifiers",
        ),
        pytest.param(
            [n("a", ["b", "c"]), n("d", ["e"])],
            [
                "Node identifier b does not exist in the graph\n"
                "Node identifier c does not exist in the graph\n"
                "Node identifier e does not exist in the graph"
            ],
            id="missing-next-nodes",
        ),
        pytest.param(
            [n("a", ["zz"]), n("a")],
            ["Node identifier a is not unique"],
            id="uniqueness-stops-the-nodes-chain",
        ),
        pytest.param(
            [n("a", ["b"]), n("b", unites="zz")],
            ["Node b has an unites target zz that does not exist"],
            id="unites-target-missing",
        ),
        pytest.param(
            [n("a", ["b"]), n("b", unites="b"), n("c", unites="q")],
            [
                "Node b has an unites target b that is the same as the node itself\n"
                "Node c has an unites target q that does not exist"
            ],
            id="unites-self-and-missing",
        ),
        pytest.param(
            [],
            [
                "There should be exactly one root node in the graph but found 0 nodes with "
                "zero in-degree: []"
            ],
            id="empty-graph",
        ),
        pytest.param(
            [n("a", ["b"]), n("b", ["a"])],
            [
                "There should be exactly one root node in the graph but found 0 nodes with "
                "zero in-degree: []"
            ],
            id="cycle-without-root",
        ),
        pytest.param(
            [n("r", ["a"]), n("a"), n("b", ["c"]), n("c", ["b"])],
            ["Node b is not connected to the root node\nNode c is not connected to the root node"],
            id="disconnected-cycle",
        ),
        pytest.param(
            [n("r", ["a"]), n("a"), n("u", unites="a")],
            ["Node u is not connected to the root node"],
            id="unite-only-through-unites",
        ),
        pytest.param(
            [n("r", ["a"]), n("a", ["b"]), n("b", ["a"])],
            ["Node a is not acyclic"],
            id="cycle-below-root",
        ),
        pytest.param(
            [n("r", ["u"]), n("u", unites="x"), n("x", ["y"]), n("y", ["x"])],
            ["Error building dependency graph: Graph is disconnected at: {'x': ['u']}"],
            id="unites-target-never-reached",
        ),
    ],
)
def test_structural_messages(nodes: list[dict[str, Any]], messages: list[str]) -> None:
    assert failure(nodes).messages == messages


def test_root_message_lists_the_zero_in_degree_nodes_like_upstream() -> None:
    error = failure([n("a"), n("b", unites="a"), n("c")])
    node_a = NodeTemplate.model_validate(n("a"))
    node_c = NodeTemplate.model_validate(n("c"))
    assert error.messages == [
        "There should be exactly one root node in the graph but found 2 nodes with "
        f"zero in-degree: {[node_a, node_c]}"
    ]
    assert "NodeTemplate(node_name='Node', namespace='ns', identifier='a', inputs={}" in str(error)


@pytest.mark.parametrize(
    ("inputs", "messages"),
    [
        pytest.param({"k": 1}, ["Input 1 is not a string"], id="int"),
        pytest.param({"k": None}, ["Input None is not a string"], id="null"),
        pytest.param({"k": {"a": 1}}, ["Input {'a': 1} is not a string"], id="object"),
        pytest.param(
            {"k": "${{ r.outputs.x"},
            [
                "Error creating dependent string for input ${{ r.outputs.x check syntax string: "
                "Invalid syntax string placeholder  r.outputs.x for: ${{ r.outputs.x "
                "'${' not closed"
            ],
            id="unclosed",
        ),
        pytest.param(
            {"k": "${{ r.x }}"},
            [
                "Error creating dependent string for input ${{ r.x }} check syntax string: "
                "Invalid syntax string placeholder  r.x  for: ${{ r.x }}"
            ],
            id="bad-syntax",
        ),
        pytest.param(
            {"k": out("b")},
            ["Input ${{ b.outputs.x }} depends on b but b is not a parent of b"],
            id="self-reference",
        ),
        pytest.param(
            {"k": "${{ store.nope }}"},
            [
                "Input ${{ store.nope }} depends on nope but nope is not a required key "
                "or a default value"
            ],
            id="store-key-unknown",
        ),
        pytest.param(
            {"k": out("zz") + out("b", "y"), "j": 2},
            [
                "Input ${{ zz.outputs.x }}${{ b.outputs.y }} depends on zz but zz is not a "
                "parent of b\n"
                "Input ${{ zz.outputs.x }}${{ b.outputs.y }} depends on b but b is not a "
                "parent of b\n"
                "Input 2 is not a string"
            ],
            id="all-input-errors-joined",
        ),
    ],
)
def test_input_messages(inputs: dict[str, Any], messages: list[str]) -> None:
    assert failure([n("r", ["b"]), n("b", inputs=inputs)]).messages == messages


def test_store_inputs_accept_required_keys_and_defaults() -> None:
    nodes = [n("r", ["b"], {"a": "${{ store.req }}"}), n("b", inputs={"c": "${{ store.dft }}"})]
    config = StoreConfig(required_keys=["req"], default_values={"dft": "v"})
    check_graph(nodes, store_config=config)
    with pytest.raises(GraphCheckError):
        check_graph(nodes, store_config=StoreConfig(required_keys=["req"]))


def test_root_inputs_may_only_be_literals_or_store() -> None:
    assert failure([n("r", inputs={"k": out("r")})]).messages == [
        "Input ${{ r.outputs.x }} depends on r but r is not a parent of r"
    ]


def test_empty_secret_name_is_a_field_error_but_empty_value_is_not() -> None:
    check_graph([n("r")], secret_names=["token"])
    error = failure([n("r")], secret_names=["", "ok"])
    assert error.messages == ["Secrets cannot be empty"]
    text = str(error)
    assert text.startswith("1 validation error for GraphTemplate\nsecrets\n  Value error, ")
    assert "'**********'" in text


# -- the order of the groups -----------------------------------------------------------------


def test_node_and_secret_field_errors_are_reported_together() -> None:
    error = failure([n("a"), n("a")], secret_names=[""])
    assert error.messages == ["Node identifier a is not unique", "Secrets cannot be empty"]
    lines = str(error).split("\n")
    assert lines[0] == "2 validation errors for GraphTemplate"
    assert lines[1] == "nodes"
    assert lines[2].startswith("  Value error, Node identifier a is not unique [type=value_error")
    assert lines[3].startswith("    For further information visit https://errors.pydantic.dev/")
    assert lines[4] == "secrets"


def test_field_errors_hide_model_errors() -> None:
    # Two roots and a bad input too, but only the field error is reported.
    error = failure([n("a", ["x"]), n("b", inputs={"k": 1})])
    assert error.messages == ["Node identifier x does not exist in the graph"]


@pytest.mark.parametrize(
    ("nodes", "first"),
    [
        pytest.param(
            [n("r", ["u"]), n("u", unites="zz"), n("lonely")],
            "Node u has an unites target zz",
            id="unites-before-root",
        ),
        pytest.param(
            [n("r"), n("s"), n("a", ["b"], {"k": 1}), n("b", ["a"])],
            "There should be exactly one root",
            id="root-before-inputs",
        ),
        pytest.param(
            [n("r", ["a"]), n("a", ["b"]), n("b", ["a"]), n("c", ["d"], {"k": 1}), n("d", ["c"])],
            "Node c is not connected",
            id="connected-before-acyclic",
        ),
        pytest.param(
            [n("r", ["a"], {"k": 1}), n("a", ["b"]), n("b", ["a"])],
            "Node a is not acyclic",
            id="acyclic-before-inputs",
        ),
    ],
)
def test_first_failing_model_validator_wins(nodes: list[dict[str, Any]], first: str) -> None:
    error = failure(nodes)
    assert len(error.messages) == 1
    assert error.messages[0].startswith(first)


def test_model_error_text_mimics_pydantic() -> None:
    error = failure([n("r", ["a"]), n("a", ["b"]), n("b", ["a"])], name="g", namespace="ns")
    text = str(error)
    assert text.startswith(
        "1 validation error for GraphTemplate\n  Value error, Node a is not acyclic "
        "[type=value_error, input_value={'name': 'g', 'namespace'"
    )
    assert text.endswith("/v/value_error")
    assert error.detail == DETAIL_PREFIX + text
    assert error.detail.startswith("Error validating graph template: 1 validation error")


# -- the "parents" DFS and its quirks ---------------------------------------------------------


def test_parents_follow_first_visit_only() -> None:
    # a->b->d->e, a->c->d: d gets {a,b,c} but e only {a,b,d} (contract §4.3 example).
    nodes = [n("a", ["b", "c"]), n("b", ["d"]), n("c", ["d"]), n("d", ["e"]), n("e")]
    assert parents_of(nodes) == {
        "a": set(),
        "b": {"a"},
        "c": {"a"},
        "d": {"a", "b", "c"},
        "e": {"a", "b", "d"},
    }
    assert compute_structure(nodes).root == "a"
    check_graph(
        [n("a", ["b", "c"]), n("b", ["d"]), n("c", ["d"]), n("d", ["e"], {"k": out("c")}), n("e")]
    )
    error = failure([*nodes[:4], n("e", inputs={"k": out("c")})])
    assert error.messages == ["Input ${{ c.outputs.x }} depends on c but c is not a parent of e"]


def test_unite_replaces_its_parents_with_the_targets() -> None:
    # root -> splitter -> worker -> merger(unites root)
    nodes = [n("r", ["s"]), n("s", ["w"]), n("w", ["m"]), n("m", ["z"], unites="r"), n("z")]
    parents = parents_of(nodes)
    assert parents["m"] == {"r"}
    assert parents["z"] == {"r"}  # children of a unite node do not get the unite node itself
    check_graph([*nodes[:3], n("m", ["z"], {"k": out("r")}, unites="r"), n("z")])
    error = failure([*nodes[:3], n("m", ["z"], {"k": out("w")}, unites="r"), n("z")])
    assert error.messages == ["Input ${{ w.outputs.x }} depends on w but w is not a parent of m"]
    error = failure([*nodes[:4], n("z", inputs={"k": out("m")})])
    assert error.messages == ["Input ${{ m.outputs.x }} depends on m but m is not a parent of z"]


def test_docs_unite_example_fails_validation() -> None:
    # The docs' merger references its predecessor "processor" while uniting "data_splitter".
    nodes = [
        n("data_splitter", ["processor"]),
        n("processor", ["merger"]),
        n("merger", inputs={"r": out("processor", "result")}, unites="data_splitter"),
    ]
    assert failure(nodes).messages == [
        "Input ${{ processor.outputs.result }} depends on processor but processor is not a "
        "parent of merger"
    ]


def test_unite_reached_before_its_target_waits_and_gets_a_union() -> None:
    # r -> p -> u(unites x) is walked before r -> x: u waits for x, then receives a union, so it
    # keeps p; with x walked first, u's set is replaced and p is gone.
    waits = [n("r", ["p", "x"]), n("p", ["u"]), n("x"), n("u", unites="x")]
    replaced = [n("r", ["x", "p"]), n("p", ["u"]), n("x"), n("u", unites="x")]
    assert parents_of(waits)["u"] == {"r", "p", "x"}
    assert parents_of(replaced)["u"] == {"r", "x"}


def test_children_of_a_waiting_unite_are_never_walked() -> None:
    nodes = [n("r", ["u", "x"]), n("u", ["c"], unites="x"), n("x"), n("c")]
    assert failure(nodes).messages == ["Node c is not connected to the root node"]
    # Listing x first makes the same graph valid.
    check_graph([n("r", ["x", "u"]), n("u", ["c"], unites="x"), n("x"), n("c")])


def test_unites_target_need_not_be_an_ancestor() -> None:
    # Accepted here; fails at runtime instead (contract §4.3, §3.5 step 4a).
    structure = check_graph([n("r", ["a", "b"]), n("a", ["u"]), n("b"), n("u", unites="b")])
    # u is reached (via a) before b is visited, so it waits and keeps a (a union).
    assert set(structure.parents["u"]) == {"r", "a", "b"}


def test_diamond_without_unites_is_valid() -> None:
    structure = check_graph([n("a", ["b", "c"]), n("b", ["d"]), n("c", ["d"]), n("d")])
    assert structure.root == "a"
    assert set(structure.paths["d"]) == {"a", "b", "c"}


def test_accepts_models_and_long_chains_without_recursion_errors() -> None:
    count = 1100
    nodes = [
        NodeTemplate.model_validate(n(f"n{i}", [f"n{i + 1}"] if i + 1 < count else None))
        for i in range(count)
    ]
    structure = check_graph(nodes)
    assert len(structure.parents[f"n{count - 1}"]) == count - 1


@st.composite
def random_graphs(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(0, 7))
    idents = [f"n{i}" for i in range(size)]
    ids = st.sampled_from([*idents, "ghost"]) if idents else st.just("ghost")
    nodes = []
    for ident in idents:
        nxt = draw(st.one_of(st.none(), st.lists(ids, max_size=3, unique=True)))
        unites = draw(st.one_of(st.none(), ids))
        value = draw(st.sampled_from(["lit", 1, "${{ store.k }}", "${{ bad"]))
        ref = draw(ids)
        inputs = {"a": value, "b": f"${{{{ {ref}.outputs.x }}}}"}
        nodes.append(n(ident, nxt, inputs, unites))
    return nodes


@given(random_graphs())
def test_arbitrary_graphs_either_pass_or_raise_graph_check_error(
    nodes: list[dict[str, Any]],
) -> None:
    error: GraphCheckError | None = None
    try:
        structure = check_graph(nodes, store_config=StoreConfig(required_keys=["k"]))
    except GraphCheckError as exc:
        error = exc
    if error is not None:
        assert error.messages
        assert error.detail.startswith(DETAIL_PREFIX)
        return
    for ident, parents in structure.parents.items():
        assert ident == structure.root or structure.root in parents
        assert ident not in structure.paths[ident]


@given(st.integers(1, 12), st.data())
def test_random_trees_are_valid_and_parents_are_the_ancestors(
    size: int, data: st.DataObject
) -> None:
    parent_of = {i: data.draw(st.integers(0, i - 1)) for i in range(1, size)}
    children: dict[int, list[str]] = {i: [] for i in range(size)}
    for child, parent in parent_of.items():
        children[parent].append(f"n{child}")
    nodes = [n(f"n{i}", children[i] or None) for i in range(size)]
    structure = check_graph(nodes)
    for child in range(size):
        ancestors, current = set(), child
        while current in parent_of:
            current = parent_of[current]
            ancestors.add(f"n{current}")
        assert set(structure.parents[f"n{child}"]) == ancestors

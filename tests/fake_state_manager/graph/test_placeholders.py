"""Tests of the dependent-string grammar (contract §4.2)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fake_state_manager._graph.placeholders import STORE, DependentString, PlaceholderError, parse


@pytest.mark.parametrize(
    ("text", "head", "parts"),
    [
        pytest.param("plain", "plain", (), id="literal"),
        pytest.param("", "", (), id="empty"),
        pytest.param("initial", "initial", (), id="initial-is-literal"),
        pytest.param("${{ a.outputs.x }}", "", (("a", "x", ""),), id="only-placeholder"),
        pytest.param("${{a.outputs.x}}", "", (("a", "x", ""),), id="no-spaces"),
        pytest.param("${{  a . outputs . x  }}", "", (("a", "x", ""),), id="spaces-around-dots"),
        pytest.param("Hi ${{ a.outputs.x }}!", "Hi ", (("a", "x", "!"),), id="head-and-tail"),
        pytest.param(
            "${{ store.k }}-${{ b.outputs.y }}.",
            "",
            (("store", "k", "-"), ("b", "y", ".")),
            id="store-then-output",
        ),
        pytest.param(
            "${{ a.outputs.x }} }} more", "", (("a", "x", " }} more"),), id="second-close-in-tail"
        ),
        pytest.param("a }} b", "a }} b", (), id="close-without-open"),
        pytest.param("${{ store.outputs.k }}", "", (("store", "k", ""),), id="store-outputs-form"),
    ],
)
def test_parse_splits_head_and_parts(
    text: str, head: str, parts: tuple[tuple[str, str, str], ...]
) -> None:
    parsed = parse(text)
    assert parsed == DependentString(head=head, parts=parts)
    assert parsed.is_literal is (not parts)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "${{ a.outputs.x",
            "Invalid syntax string placeholder  a.outputs.x for: ${{ a.outputs.x '${' not closed",
            id="unclosed",
        ),
        pytest.param(
            "x ${{ a.outputs.y }} ${{ b",
            "Invalid syntax string placeholder  b for: x ${{ a.outputs.y }} ${{ b '${' not closed",
            id="second-unclosed",
        ),
        pytest.param(
            "${{ a.x }}", "Invalid syntax string placeholder  a.x  for: ${{ a.x }}", id="two-parts"
        ),
        pytest.param(
            "${{ a.inputs.x }}",
            "Invalid syntax string placeholder  a.inputs.x  for: ${{ a.inputs.x }}",
            id="not-outputs",
        ),
        pytest.param(
            "${{ store }}",
            "Invalid syntax string placeholder  store  for: ${{ store }}",
            id="store-without-key",
        ),
        pytest.param(
            "${{ a.outputs.x.y }}",
            "Invalid syntax string placeholder  a.outputs.x.y  for: ${{ a.outputs.x.y }}",
            id="four-parts",
        ),
        pytest.param("${{}}", "Invalid syntax string placeholder  for: ${{}}", id="empty"),
    ],
)
def test_parse_rejects_bad_placeholders_with_upstream_message(text: str, message: str) -> None:
    with pytest.raises(PlaceholderError) as info:
        parse(text)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_dependencies_are_distinct_in_first_appearance_order() -> None:
    parsed = parse("${{ b.outputs.y }}${{ store.k }}${{ a.outputs.x }}${{ b.outputs.y }}")
    assert parsed.dependencies() == [("b", "y"), (STORE, "k"), ("a", "x")]
    assert parsed.identifiers() == ["b", STORE, "a"]
    assert parsed.store_keys() == ["k"]


def test_render_resolves_each_reference_once_and_concatenates() -> None:
    calls: list[tuple[str, str]] = []

    def resolve(identifier: str, field: str) -> str:
        calls.append((identifier, field))
        return f"<{identifier}.{field}>"

    text = "h ${{ a.outputs.x }} m ${{ store.k }} t ${{ a.outputs.x }}!"
    assert parse(text).render(resolve) == "h <a.x> m <store.k> t <a.x>!"
    assert calls == [("a", "x"), ("store", "k")]


def test_render_of_literal_never_calls_the_resolver() -> None:
    def resolve(identifier: str, field: str) -> str:
        raise AssertionError("not called")

    assert parse("just text").render(resolve) == "just text"


@pytest.mark.parametrize(
    ("value", "type_name"),
    [pytest.param(1, "int", id="int"), pytest.param(None, "NoneType", id="none")],
)
def test_render_non_string_value_raises_type_error_like_concatenation(
    value: object, type_name: str
) -> None:
    with pytest.raises(TypeError, match=f'not "{type_name}"'):
        parse("${{ a.outputs.x }}").render(lambda i, f: value)


def test_render_propagates_resolver_errors() -> None:
    def resolve(identifier: str, field: str) -> str:
        raise KeyError(identifier)

    with pytest.raises(KeyError):
        parse("${{ a.outputs.x }}").render(resolve)


_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8).filter(
    lambda s: s not in {STORE, "outputs"}
)
_literal = st.text(max_size=10).filter(lambda s: "${{" not in s and "}}" not in s and "$" not in s)


@given(
    head=_literal,
    parts=st.lists(st.tuples(st.one_of(_names, st.just(STORE)), _names, _literal), max_size=4),
)
def test_round_trip_of_generated_templates(head: str, parts: list[tuple[str, str, str]]) -> None:
    text = head + "".join(
        (f"${{{{ store.{field} }}}}" if ident == STORE else f"${{{{ {ident}.outputs.{field} }}}}")
        + tail
        for ident, field, tail in parts
    )
    parsed = parse(text)
    assert parsed.head == head
    assert parsed.parts == tuple(parts)
    rendered = parsed.render(lambda ident, field: f"[{ident}:{field}]")
    assert rendered == head + "".join(f"[{i}:{f}]{t}" for i, f, t in parts)

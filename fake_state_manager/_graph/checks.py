"""Structural validation of a graph template at save time (contract §4.3).

Upstream runs these checks as pydantic validators of its ``GraphTemplate`` document model and
answers ``400 {"detail": "Error validating graph template: " + str(validation_error)}``. We run
the same checks, in the same order, with the same messages, and build the text with pydantic's
own ``ValidationError`` formatter, so the detail reads exactly like upstream's::

    1 validation error for GraphTemplate
    nodes
      Value error, Node identifier a is not unique [type=value_error, input_value=[...], ...]
        For further information visit https://errors.pydantic.dev/<version>/v/value_error

How the text is assembled (mimicking pydantic's semantics):

1. **Field validators.** ``nodes`` runs "identifiers unique", then (only if that passed) "every
   ``next_nodes`` entry exists"; ``secrets`` runs "secret names non-empty". Both fields report:
   two failing fields give ``2 validation errors for GraphTemplate`` with a ``nodes`` and a
   ``secrets`` block (loc line = field name, ``input_value`` = the field's value; secret values
   are masked, never printed).
2. **Model validators** run only when every field passed, in order: unites targets, root +
   connectivity, acyclicity, inputs. The first failing one is the single error, with no loc
   line and ``input_value`` = a dict starting with ``name``, ``namespace``, ``nodes``.
3. Each validator joins all of its messages with ``"\\n"``, as upstream does.

The pydantic version in the ``errors.pydantic.dev`` URL and the exact truncated ``input_value``
may differ from upstream's; the message fragments (contract §4.3) are identical.

The root search and upstream's "parents" DFS live in :mod:`.structure`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic_core import InitErrorDetails, ValidationError

from exo_ref import StoreConfigModel
from fake_state_manager._graph.models import NodeTemplate
from fake_state_manager._graph.placeholders import STORE, parse
from fake_state_manager._graph.structure import (
    GraphStructure,
    compute_structure,
)

__all__ = [
    "DETAIL_PREFIX",
    "GraphCheckError",
    "GraphStructure",
    "check_graph",
    "compute_structure",
]

#: The engine's 400 detail is ``DETAIL_PREFIX + str(error)`` (contract §2.3).
DETAIL_PREFIX = "Error validating graph template: "

_TITLE = "GraphTemplate"
_MASK = "**********"


class GraphCheckError(ValueError):
    """A graph template failed structural validation (contract §4.3).

    ``str(error)`` is the pydantic-style text; :attr:`detail` is the full 400 detail.

    Attributes:
        messages: The raw messages, one per failing validator (each may hold several lines).
        validation_error: The underlying ``pydantic_core.ValidationError``.
    """

    def __init__(self, validation_error: ValidationError, messages: Sequence[str]) -> None:
        super().__init__(str(validation_error))
        self.validation_error = validation_error
        self.messages = list(messages)

    @property
    def detail(self) -> str:
        """``Error validating graph template: <text>`` as upstream's 400 detail."""
        return DETAIL_PREFIX + str(self)


def _value_error(loc: tuple[str, ...], value: Any, message: str) -> InitErrorDetails:
    # Exactly what pydantic records when a validator raises ValueError(message).
    ctx = {"error": ValueError(message)}
    return {"type": "value_error", "loc": loc, "input": value, "ctx": ctx}


def check_graph(
    nodes: Sequence[NodeTemplate],
    *,
    secret_names: Iterable[str] = (),
    store_config: StoreConfigModel | None = None,
    name: str = "",
    namespace: str = "",
) -> GraphStructure:
    """Run every check of contract §4.3 on an upsert body.

    Args:
        nodes: The template's nodes, validated (the request model's ``NodeTemplate`` list).
        secret_names: The body's secret names (values are not checked: upstream checks the
            ciphertext, which is never empty).
        store_config: For the ``store.k`` input check; default: no keys.
        name: Graph name (only shown in the error's ``input_value``).
        namespace: Namespace (only shown in the error's ``input_value``).

    Returns:
        The computed structure (root, parents, paths).

    Raises:
        GraphCheckError: the first failing group, with upstream's text.
    """
    templates = list(nodes)
    config = store_config if store_config is not None else StoreConfigModel()
    names = list(secret_names)

    field_errors: list[InitErrorDetails] = []
    messages: list[str] = []
    nodes_message = _check_unique(templates) or _check_next_nodes_exist(templates)
    if nodes_message:
        field_errors.append(_value_error(("nodes",), templates, nodes_message))
        messages.append(nodes_message)
    if any(not secret for secret in names):
        message = "Secrets cannot be empty"
        field_errors.append(_value_error(("secrets",), dict.fromkeys(names, _MASK), message))
        messages.append(message)
    if field_errors:
        raise GraphCheckError(ValidationError.from_exception_data(_TITLE, field_errors), messages)

    model_input = {"name": name, "namespace": namespace, "nodes": templates}

    def fail(message: str) -> GraphCheckError:
        line = _value_error((), model_input, message)
        return GraphCheckError(ValidationError.from_exception_data(_TITLE, [line]), [message])

    message = _check_unites_targets(templates)
    if message:
        raise fail(message)
    try:
        structure = compute_structure(templates)
    except ValueError as exc:
        raise fail(str(exc)) from None
    for check in (_check_connected, _check_acyclic):
        message = check(templates, structure)
        if message:
            raise fail(message)
    message = _check_inputs(templates, structure, config)
    if message:
        raise fail(message)
    return structure


def _join(errors: list[str]) -> str:
    return "\n".join(errors)


def _check_unique(nodes: list[NodeTemplate]) -> str:
    seen: set[str] = set()
    errors: list[str] = []
    for node in nodes:
        if node.identifier in seen:
            errors.append(f"Node identifier {node.identifier} is not unique")
        seen.add(node.identifier)
    return _join(errors)


def _check_next_nodes_exist(nodes: list[NodeTemplate]) -> str:
    identifiers = {node.identifier for node in nodes}
    return _join(
        [
            f"Node identifier {nxt} does not exist in the graph"
            for node in nodes
            for nxt in node.next_nodes or ()
            if nxt not in identifiers
        ]
    )


def _check_unites_targets(nodes: list[NodeTemplate]) -> str:
    identifiers = {node.identifier for node in nodes}
    errors: list[str] = []
    for node in nodes:
        if node.unites is None:
            continue
        target = node.unites.identifier
        if target not in identifiers:
            errors.append(
                f"Node {node.identifier} has an unites target {target} that does not exist"
            )
        if target == node.identifier:
            errors.append(
                f"Node {node.identifier} has an unites target {target} "
                "that is the same as the node itself"
            )
    return _join(errors)


def _check_connected(nodes: list[NodeTemplate], structure: GraphStructure) -> str:
    return _join(
        [
            f"Node {node.identifier} is not connected to the root node"
            for node in nodes
            if node.identifier != structure.root
            and not structure.is_parent(structure.root, node.identifier)
        ]
    )


def _check_acyclic(nodes: list[NodeTemplate], structure: GraphStructure) -> str:
    return _join(
        [
            f"Node {node.identifier} is not acyclic"
            for node in nodes
            if structure.on_own_path(node.identifier)
        ]
    )


def _check_inputs(
    nodes: list[NodeTemplate], structure: GraphStructure, config: StoreConfigModel
) -> str:
    # Membership is asked per reference of the bitsets (contract §4.3 "Inputs"): decoding each
    # node's parents into a set would be quadratic for a chain (issue #9). ``required_keys`` is
    # a list: as a set, a store reference costs O(1) however many keys are declared.
    known_keys = {*config.required_keys, *config.default_values}
    errors: list[str] = []
    for node in nodes:
        for value in node.inputs.values():
            if not isinstance(value, str):
                errors.append(f"Input {value} is not a string")
                continue
            try:
                parsed = parse(value)
            except ValueError as exc:
                errors.append(
                    f"Error creating dependent string for input {value} check syntax string: {exc}"
                )
                continue
            # Upstream iterates sets here; we use first-appearance order (deterministic).
            for ident in parsed.identifiers():
                if ident != STORE and not structure.is_parent(ident, node.identifier):
                    errors.append(
                        f"Input {value} depends on {ident} but {ident} "
                        f"is not a parent of {node.identifier}"
                    )
            for key in parsed.store_keys():
                if key not in known_keys:
                    errors.append(
                        f"Input {value} depends on {key} but {key} "
                        "is not a required key or a default value"
                    )
    return _join(errors)

"""Background verification of a saved graph template (contract §4.4).

``verify_graph`` returns the error strings upstream's ``verify_graph`` task would store; an
empty list means ``VALID``. The checks and messages are upstream's, in its order: unregistered
nodes, missing secrets, then per node its registered inputs and the output fields its
placeholders use.

Deliberate differences (docs/fidelity.md):

- Upstream iterates Python sets for the first two groups, so their order is arbitrary; we list
  them in template order (nodes) and in order of first declaration (secrets).
- Upstream verifies an *update* with the node lookup cache of the previous version, so a
  placeholder naming an identifier that is new in this version yields ``Node X does not exist in
  the graph template`` until the same body is upserted again. We always use the template being
  verified (the evident intent).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from fake_state_manager._graph import jsonschema as js
from fake_state_manager._graph.models import NodeTemplate
from fake_state_manager._graph.placeholders import STORE, parse

__all__ = ["RegisteredNodeLookup", "verify_graph"]

#: ``lookup(node_name, namespace)`` -> the registered node (a mapping or an object with
#: ``inputs_schema``, ``outputs_schema`` and ``secrets``), or None when not registered.
RegisteredNodeLookup = Callable[[str, str], object | None]


def _attr(registered: object, name: str) -> Any:
    if isinstance(registered, Mapping):
        return registered.get(name)
    return getattr(registered, name, None)


def verify_graph(
    nodes: Iterable[NodeTemplate | Mapping[str, Any]],
    secret_names: Iterable[str],
    lookup: RegisteredNodeLookup,
) -> list[str]:
    """The verification errors of a template (contract §4.4); ``[]`` means VALID.

    Args:
        nodes: The template's nodes, already through :func:`~.checks.check_graph`.
        secret_names: The template's secret names.
        lookup: Finds a registered node by ``(name, namespace)``.

    An unexpected failure becomes the single error ``Validation failed due to unexpected
    error: ...``, as upstream records it.
    """
    try:
        return _verify(
            [n if isinstance(n, NodeTemplate) else NodeTemplate.model_validate(n) for n in nodes],
            set(secret_names),
            lookup,
        )
    except Exception as exc:  # noqa: BLE001 - upstream turns any failure into INVALID
        return [f"Validation failed due to unexpected error: {exc}"]


def _verify(
    templates: list[NodeTemplate], secret_names: set[str], lookup: RegisteredNodeLookup
) -> list[str]:
    registered: dict[tuple[str, str], object | None] = {}
    for node in templates:
        key = (node.node_name, node.namespace)
        if key not in registered:
            registered[key] = lookup(*key)

    errors = [
        f"Node {name} in namespace {namespace} does not exist."
        for (name, namespace), found in registered.items()
        if found is None
    ]

    required: dict[str, None] = {}
    for found in registered.values():
        secrets = _attr(found, "secrets") if found is not None else None
        for secret in secrets or ():
            required.setdefault(str(secret), None)
    errors += [
        f"Secret {secret} is required but not present in the graph template"
        for secret in required
        if secret not in secret_names
    ]

    by_id = {node.identifier: node for node in templates}
    for node in templates:
        errors += _verify_node(node, by_id, registered)
    return errors


def _verify_node(
    node: NodeTemplate,
    by_id: Mapping[str, NodeTemplate],
    registered: Mapping[tuple[str, str], object | None],
) -> list[str]:
    where = f"in node {node.node_name} in namespace {node.namespace}"
    found = registered[(node.node_name, node.namespace)]
    if found is None:
        # Upstream reports the missing node a second time here, without the final period.
        return [f"Node {node.node_name} in namespace {node.namespace} does not exist"]
    errors: list[str] = []
    inputs_schema = _attr(found, "inputs_schema")
    for field in js.field_names(inputs_schema):
        if not js.is_string_field(inputs_schema, field):
            errors.append(f"Input {field} {where} is not a string")
        elif field not in node.inputs:
            errors.append(f"Input {field} {where} is not present in the graph template")

    for value in node.inputs.values():
        # Structural validation (§4.3) already guaranteed strings that parse.
        for ident, field in parse(str(value)).dependencies():
            if ident == STORE:
                continue
            source = by_id.get(ident)
            if source is None:
                errors.append(f"Node {ident} does not exist in the graph template")
                continue
            source_found = registered.get((source.node_name, source.namespace))
            if source_found is None:
                errors.append(
                    f"Node {source.node_name} in namespace {source.namespace} does not exist"
                )
                continue
            outputs_schema = _attr(source_found, "outputs_schema")
            source_where = f"in node {source.node_name} in namespace {source.namespace}"
            if js.field_schema(outputs_schema, field) is None:
                errors.append(f"Field {field} {source_where} does not exist")
            elif not js.is_string_field(outputs_schema, field):
                errors.append(f"Field {field} {source_where} is not a string")
    return errors

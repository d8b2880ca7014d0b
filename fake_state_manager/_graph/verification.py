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
    nodes: Iterable[NodeTemplate],
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
            list(nodes),
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
    schemas = _Schemas(registered)
    for node in templates:
        errors += _verify_node(node, by_id, schemas)
    return errors


class _Schemas:
    """The registered nodes' schemas, each read once per verification (issue #9).

    A template typically uses a few registered nodes for thousands of template nodes; reading
    each schema again per template node (and per placeholder) made verification of a large
    graph cost several times what it must. The answers are those of :mod:`.jsonschema`, so the
    messages of contract §4.4 are unchanged; each schema is read when first needed, in the
    order the per-node checks need it.
    """

    __slots__ = ("_inputs", "_outputs", "registered")

    def __init__(self, registered: Mapping[tuple[str, str], object | None]) -> None:
        self.registered = registered
        self._inputs: dict[tuple[str, str], list[tuple[str, bool]]] = {}
        self._outputs: dict[tuple[str, str], tuple[object, dict[str, str | None]]] = {}

    def input_fields(self, key: tuple[str, str], found: object) -> list[tuple[str, bool]]:
        """``(field, is a plain string)`` per field of the registered ``inputs_schema``."""
        fields = self._inputs.get(key)
        if fields is None:
            schema = _attr(found, "inputs_schema")
            fields = [(f, js.is_string_field(schema, f)) for f in js.field_names(schema)]
            self._inputs[key] = fields
        return fields

    def output_problem(self, key: tuple[str, str], found: object, field: str) -> str | None:
        """``"does not exist"`` / ``"is not a string"`` for an output field, None when fine."""
        cached = self._outputs.get(key)
        if cached is None:
            cached = (_attr(found, "outputs_schema"), {})
            self._outputs[key] = cached
        schema, problems = cached
        if field not in problems:
            if js.field_schema(schema, field) is None:
                problems[field] = "does not exist"
            elif not js.is_string_field(schema, field):
                problems[field] = "is not a string"
            else:
                problems[field] = None
        return problems[field]


def _verify_node(
    node: NodeTemplate, by_id: Mapping[str, NodeTemplate], schemas: _Schemas
) -> list[str]:
    where = f"in node {node.node_name} in namespace {node.namespace}"
    key = (node.node_name, node.namespace)
    found = schemas.registered[key]
    if found is None:
        # Upstream reports the missing node a second time here, without the final period.
        return [f"Node {node.node_name} in namespace {node.namespace} does not exist"]
    errors: list[str] = []
    for field, is_string in schemas.input_fields(key, found):
        if not is_string:
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
            source_key = (source.node_name, source.namespace)
            source_found = schemas.registered.get(source_key)
            if source_found is None:
                errors.append(
                    f"Node {source.node_name} in namespace {source.namespace} does not exist"
                )
                continue
            problem = schemas.output_problem(source_key, source_found, field)
            if problem is not None:
                source_where = f"in node {source.node_name} in namespace {source.namespace}"
                errors.append(f"Field {field} {source_where} {problem}")
    return errors

"""Next-state creation after ``executed``: children, unites, failure marking (contract §3.5).

Upstream runs this as a background task after answering ``executed``; the engine calls
:func:`create_next_states` synchronously right after the status change (see :mod:`.engine`), which
is one legal interleaving of upstream's behaviour.

Any exception while creating next states marks every executed state ``NEXT_CREATED_ERROR`` with
``error = str(exc)`` (§3.5 step 5), so the exception types below are chosen to render exactly as
upstream's do (a ``KeyError`` renders with quotes: ``"Identifier 'x' not found ..."``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from fake_state_manager._errors import DuplicateKeyError
from fake_state_manager._graph.jsonschema import field_names
from fake_state_manager._graph.placeholders import STORE, parse
from fake_state_manager._store.documents import (
    CREATED,
    EXECUTED,
    NEXT_CREATED_ERROR,
    QUEUED,
    RETRY_CREATED,
    SUCCESS,
    GraphTemplate,
    State,
    epoch_ms,
)
from fake_state_manager._store.store import Store

__all__ = ["create_next_states", "fingerprint"]

# §3.5 step 4b: statuses that let a unite go ahead.
_ALL_SUCCESS_OK = frozenset({SUCCESS, RETRY_CREATED})
_ALL_DONE_BLOCKING = frozenset({CREATED, QUEUED, EXECUTED})


def fingerprint(state: State) -> str:
    """The §3.1 ``state_fingerprint`` of a unite state: SHA-256 of its canonical JSON."""
    doc = {
        "node_name": state.node_name,
        "namespace_name": state.namespace_name,
        "identifier": state.identifier,
        "graph_name": state.graph_name,
        "run_id": state.run_id,
        "retry_count": state.retry_count,
        "parents": {k: str(v) for k, v in state.parents.items()},
        "manual_retry_fanout_id": state.manual_retry_fanout_id,
    }
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def create_next_states(
    store: Store,
    executed: Sequence[State],
    *,
    now: float,
) -> None:
    """Create the children of ``executed`` (the original first, then fan-out copies), §3.5.

    Never raises for graph or data problems: they become ``NEXT_CREATED_ERROR``.
    """
    original = executed[0]
    try:
        _create(store, original, executed, now)
    except Exception as exc:  # noqa: BLE001 - upstream turns any failure into NEXT_CREATED_ERROR
        for state in executed:
            store.set_status(state, NEXT_CREATED_ERROR)
            state.error = str(exc)


def _create(store: Store, original: State, executed: Sequence[State], now: float) -> None:
    namespace = original.namespace_name
    template = store.graphs.get((namespace, original.graph_name))
    # §3.5 step 1: upstream waits for a VALID template and fails at once on INVALID.
    if template is None:
        raise ValueError(f"Graph template {original.graph_name} not found in namespace {namespace}")
    if template.validation_status != "VALID":
        raise ValueError(
            f"Graph template {original.graph_name} in namespace {namespace} is "
            f"{template.validation_status}, not VALID"
        )
    node = template.node(original.identifier)
    if node is None:
        raise ValueError(
            f"Node {original.identifier} not found in graph template {original.graph_name}"
        )
    next_ids: list[str] = list(node.get("next_nodes") or [])
    now_ms = epoch_ms(now)
    children: list[State] = []
    unite_nodes: list[dict[str, Any]] = []
    for next_id in next_ids:  # §3.5 step 3
        child = template.node(next_id)
        if child is None:
            raise ValueError(f"Node {next_id} not found in graph template {template.name}")
        if child.get("unites") is not None:
            unite_nodes.append(child)
            continue
        fields = _input_fields(store, child)
        _check_dependencies(store, child, fields, original.identifier, original, original.parents)
        for state in executed:
            inputs = _render_inputs(store, template, child, fields, state, state.parents)
            children.append(
                _new_state(
                    store, child, state, inputs, {**state.parents, state.identifier: state.id}, now
                )
            )
    for child_state in children:  # step 3d: insert all children, then mark SUCCESS
        store.insert_state(child_state, now_ms)
    for state in executed:
        store.set_status(state, SUCCESS)
    for unite in unite_nodes:  # step 4
        _maybe_unite(store, template, unite, original, now, now_ms)


def _maybe_unite(
    store: Store,
    template: GraphTemplate,
    unite: dict[str, Any],
    original: State,
    now: float,
    now_ms: int,
) -> None:
    target = unite["unites"]["identifier"]
    strategy = unite["unites"].get("strategy") or "ALL_SUCCESS"
    target_id = original.parents.get(target)
    if target_id is None:  # step 4a
        raise ValueError(f"Unit identifier not found in parents: {target}")
    target_state = store.states.get(target_id)
    if target_state is None:
        raise ValueError(f"State {target_id} of unites target {target} not found")
    counts = store.descendant_counts(target_id, original.namespace_name)  # step 4b
    present = {status for status, count in counts.items() if count}
    if strategy == "ALL_DONE":
        if present & _ALL_DONE_BLOCKING:
            return
    elif present - _ALL_SUCCESS_OK:
        return
    fields = _input_fields(store, unite)  # step 4c: X is the "current" node
    _check_dependencies(store, unite, fields, target, target_state, original.parents)
    inputs = _render_inputs(store, template, unite, fields, target_state, original.parents)
    parents = {**target_state.parents, target: target_state.id}
    state = _new_state(store, unite, target_state, inputs, parents, now)
    state.does_unites = True
    state.state_fingerprint = fingerprint(state)
    with contextlib.suppress(DuplicateKeyError):  # step 4d: another branch already made it
        store.insert_state(state, now_ms)


def _new_state(
    store: Store,
    child: Mapping[str, Any],
    source: State,
    inputs: dict[str, Any],
    parents: dict[str, str],
    now: float,
) -> State:
    """A next state of ``source``'s run for template node ``child``, runnable at once (§3.5)."""
    return store.new_state(
        node_name=child["node_name"],
        namespace_name=child["namespace"],
        identifier=child["identifier"],
        graph_name=source.graph_name,
        run_id=source.run_id,
        inputs=inputs,
        parents=parents,
        enqueue_after=epoch_ms(now),
        now=now,
    )


def _input_fields(store: Store, child: Mapping[str, Any]) -> list[str]:
    # §3.5 step 3a: the input model comes from the *registered* node's inputs_schema.
    registered = store.nodes.get(child["namespace"], {}).get(child["node_name"])
    if registered is None:
        raise ValueError(
            f"Node {child['node_name']} in namespace {child['namespace']} is not registered"
        )
    return field_names(registered["inputs_schema"])


def _check_dependencies(
    store: Store,
    child: Mapping[str, Any],
    fields: Sequence[str],
    current_identifier: str,
    current: State,
    parents: Mapping[str, str],
) -> None:
    """§3.5 step 3b (``validate_dependencies``)."""
    inputs: Mapping[str, Any] = child.get("inputs") or {}
    for name in fields:
        if name not in inputs:
            raise ValueError(
                f"Field '{name}' not found in inputs for template '{child['identifier']}'"
            )
        value = inputs[name]
        if not isinstance(value, str):
            continue
        for ident, field in parse(value).dependencies():
            if ident in (STORE, current_identifier):
                continue
            if ident not in parents:
                raise KeyError(
                    f"Identifier '{ident}' not found in parents for template "
                    f"'{child['identifier']}'"
                )
            parent = store.states.get(parents[ident])
            if parent is None or field not in parent.outputs:
                raise AttributeError(
                    f"Output field '{field}' not found on state {parents[ident]} for "
                    f"template '{child['identifier']}'"
                )


def _render_inputs(
    store: Store,
    template: GraphTemplate,
    child: Mapping[str, Any],
    fields: Sequence[str],
    current: State,
    parents: Mapping[str, str],
) -> dict[str, Any]:
    """§3.5 step 3c: only the schema's fields, with placeholders substituted."""
    inputs: Mapping[str, Any] = child.get("inputs") or {}
    run_store = store.store_values.get(current.run_id, {})
    defaults: Mapping[str, str] = template.store_config.get("default_values") or {}

    def resolve(ident: str, field: str) -> object:
        if ident == STORE:
            if field in run_store:
                return run_store[field]
            if field in defaults:
                return defaults[field]
            raise ValueError(f"Store key '{field}' not found in store or default values")
        if ident == current.identifier:
            source = current
        else:
            parent_id = parents.get(ident)
            if parent_id is None or (source_state := store.states.get(parent_id)) is None:
                raise KeyError(f"Identifier '{ident}' not found in parents")
            source = source_state
        if field not in source.outputs:
            raise AttributeError(f"Output field '{field}' not found on state {source.id}")
        return source.outputs[field]

    result: dict[str, Any] = {}
    for name in fields:
        value = inputs[name]
        result[name] = parse(value).render(resolve) if isinstance(value, str) else value
    return result

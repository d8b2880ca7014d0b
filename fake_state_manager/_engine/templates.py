"""Graph-template documents and the trigger algorithm's pure parts (contract §2.3-§2.6, §4).

The engine stores templates as :class:`~fake_state_manager._store.documents.GraphTemplate`
with plain JSON-ready values (enums turned into their string values), renders them in the
shapes of the upsert / GET / list responses, and resolves a trigger's root inputs (§4.6 steps 2-4).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from exo_ref import RetryPolicyModel, ValidationStatus
from fake_state_manager._errors import ApiError
from fake_state_manager._graph.checks import GraphCheckError, check_graph
from fake_state_manager._graph.models import NodeTemplate, StoreConfig, Trigger
from fake_state_manager._graph.placeholders import STORE, PlaceholderError, parse
from fake_state_manager._json import JsonDict
from fake_state_manager._store.documents import (
    MAX_ENQUEUE_AFTER_MS,
    GraphTemplate,
    Run,
    epoch_ms,
    iso_utc,
)
from fake_state_manager._store.store import Store

__all__ = [
    "build_template",
    "list_item",
    "node_document",
    "plain",
    "root_inputs",
    "start_run",
    "template_response",
]



def plain(value: Any) -> Any:
    """A deep copy of ``value`` with enums replaced by their values and tuples by lists.

    Exact ``str``/``dict``/``list`` (what stored documents hold) take a fast path without the
    ``Mapping`` ABC check: the upsert and GET answers copy every node of the template this way,
    and that check made a 10,000-node answer cost a noticeable part of the upsert (issue #9,
    contract §2.3). Subclasses (str enums among them) take the general path below.
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or kind is float or value is None:
        return value
    if kind is dict:
        return {
            k if type(k) is str else str(k): v if type(v) is str else plain(v)
            for k, v in value.items()
        }
    if kind is list:
        return [v if type(v) is str else plain(v) for v in value]
    if isinstance(value, Enum):
        return plain(value.value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def node_document(node: NodeTemplate) -> JsonDict:
    """The stored form of a validated template node (§4.1): JSON-ready, every field present."""
    unites = node.unites
    return {
        "node_name": node.node_name,
        "namespace": node.namespace,
        "identifier": node.identifier,
        "inputs": plain(node.inputs),
        # Omitted or null is stored and served as [] (contract §4.1): upstream never emits null.
        "next_nodes": plain(node.next_nodes) if node.next_nodes is not None else [],
        "unites": None
        if unites is None
        else {"identifier": unites.identifier, "strategy": plain(unites.strategy)},
    }


def build_template(
    store: Store,
    old: GraphTemplate | None,
    namespace: str,
    graph_name: str,
    *,
    nodes: Sequence[NodeTemplate],
    secrets: Mapping[str, str],
    retry_policy: RetryPolicyModel,
    store_config: StoreConfig,
    triggers: Sequence[Trigger],
    now: float,
) -> GraphTemplate:
    """The new version of a template (§2.3), after the structural checks of §4.3.

    ``secrets`` hold the already-encrypted values (their names are what §4.3 checks). ``old``
    is the stored version, if any: its id and ``created_at`` are kept. Nothing is stored here.

    Raises:
        ApiError: 400 ``Error validating graph template: ...`` (§4.3).
    """
    try:
        check_graph(
            nodes,
            secret_names=list(secrets),
            store_config=store_config,
            name=graph_name,
            namespace=namespace,
        )
    except GraphCheckError as exc:
        raise ApiError(400, f"Error validating graph template: {exc}") from None
    return GraphTemplate(
        id=old.id if old else store.new_id(),
        name=graph_name,
        namespace=namespace,
        nodes=[node_document(node) for node in nodes],
        secrets=dict(secrets),
        retry_policy=retry_policy,
        store_config=store_config.model_dump(mode="json"),
        triggers=[trigger.model_dump(mode="json") for trigger in triggers],
        created_at=old.created_at if old else now,
        updated_at=now,
    )


def template_response(
    template: GraphTemplate, *, status: ValidationStatus, errors: list[str]
) -> JsonDict:
    """The upsert (§2.3) / GET (§2.4) body: secrets as ``{name: true}``.

    Deviation (docs/fidelity.md): GET shows the stored retry_policy, store_config and triggers
    where upstream shows the defaults (§2.4 server bug).
    """
    return {
        "nodes": plain(template.nodes),
        "secrets": dict.fromkeys(template.secrets, True),
        "retry_policy": template.retry_policy.model_dump(mode="json"),
        "store_config": plain(template.store_config),
        "triggers": plain(template.triggers),
        "created_at": iso_utc(template.created_at),
        "updated_at": iso_utc(template.updated_at),
        "validation_status": status,
        "validation_errors": list(errors),
    }


def list_item(template: GraphTemplate) -> JsonDict:
    """One list-graphs document (§2.5), with ``_id`` and the opaque stored secret values."""
    return {
        "_id": template.id,
        "created_at": iso_utc(template.created_at),
        "updated_at": iso_utc(template.updated_at),
        "name": template.name,
        "namespace": template.namespace,
        "nodes": plain(template.nodes),
        "validation_status": template.validation_status,
        "validation_errors": list(template.validation_errors),
        "secrets": dict(template.secrets),
        "triggers": plain(template.triggers),
        "retry_policy": template.retry_policy.model_dump(mode="json"),
        "store_config": plain(template.store_config),
    }


def root_inputs(
    template: GraphTemplate, inputs: Mapping[str, str], store: Mapping[str, str]
) -> dict[str, str]:
    """§4.6 steps 2-4: the root state's resolved inputs, or an :class:`ApiError` 400."""
    root = template.root()
    defaults: Mapping[str, str] = template.store_config.get("default_values") or {}
    resolved: dict[str, str] = {}
    for key, template_value in (root.get("inputs") or {}).items():
        value = inputs.get(key, template_value)
        if not isinstance(value, str):
            raise ApiError(400, f"Invalid input: Input {value} is not a string")
        try:
            dependent = parse(value)
        except PlaceholderError as exc:
            raise ApiError(400, f"Invalid input: {exc}") from None
        for ident, field in dependent.dependencies():
            if ident != STORE:
                raise ApiError(
                    400,
                    "Invalid input: 400: Root node can have only store identifier as "
                    f"dependent but got {ident}",
                )
            if field not in store and field not in defaults:
                raise ApiError(
                    400,
                    f"Invalid input: 400: Dependent {field} not found in store for root "
                    f"node {root['identifier']}",
                )
        resolved[key] = dependent.render(
            lambda _ident, field: store[field] if field in store else defaults[field]
        )
    required: Sequence[str] = template.store_config.get("required_keys") or []
    missing = [k for k in required if k not in store]
    if missing:  # step 4, after step 3; rendered like a Python set
        raise ApiError(400, "Missing store keys: {" + ", ".join(repr(k) for k in missing) + "}")
    return resolved


def start_run(
    store: Store,
    template: GraphTemplate,
    inputs: Mapping[str, str],
    store_values: Mapping[str, str],
    start_delay: int,
    now: float,
) -> JsonDict:
    """§4.6 steps 2-6 for a VALID template: the run, its store entries and its root state."""
    body_store = dict(store_values)
    resolved = root_inputs(template, dict(inputs), body_store)
    root = template.root()
    now_ms = epoch_ms(now)
    if now_ms + start_delay > MAX_ENQUEUE_AFTER_MS:  # upstream's insert would fail
        raise ApiError(
            400,
            f"start_delay is too large: it must be at most {MAX_ENQUEUE_AFTER_MS - now_ms} ms",
        )
    run_id = str(uuid.uuid4())
    store.insert_run(Run(run_id, template.name, template.namespace, now, store.next_seq()))
    store.store_values[run_id] = body_store  # body entries only, not defaults
    store.insert_state(
        store.new_state(
            node_name=root["node_name"],
            namespace_name=template.namespace,  # the trigger's path namespace
            identifier=root["identifier"],
            graph_name=template.name,
            run_id=run_id,
            inputs=resolved,  # all root template inputs, not filtered by schema
            parents={},
            enqueue_after=now_ms + max(0, start_delay),
            now=now,
        ),
        now_ms,
    )
    return {"status": "CREATED", "run_id": run_id}

"""The engine's one seam onto the contract's domain rules (the helper modules).

Structural checks (§4.3), verification (§4.4) and cron arithmetic (§4.7) live in their own
modules; the engine calls them only through these small functions, so their signatures are
adapted in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fake_state_manager import _cron
from fake_state_manager._documents import GraphTemplate
from fake_state_manager._graph_checks import GraphCheckError, check_graph
from fake_state_manager._store import Store
from fake_state_manager._verification import verify_graph

__all__ = ["next_fire", "structural_error", "verify"]


def structural_error(
    nodes: Sequence[Mapping[str, Any]],
    secrets: Mapping[str, str],
    store_config: Mapping[str, Any],
    *,
    name: str = "",
    namespace: str = "",
) -> str | None:
    """The §4.3 error text (without the ``Error validating graph template: `` prefix), or None."""
    try:
        check_graph(
            nodes,
            secret_names=list(secrets),
            store_config=store_config,
            name=name,
            namespace=namespace,
        )
    except GraphCheckError as exc:
        return str(exc)
    return None


def verify(template: GraphTemplate, store: Store) -> list[str]:
    """§4.4 verification errors of ``template`` against the registered nodes (empty: VALID)."""

    def lookup(node_name: str, namespace: str) -> object | None:
        return store.nodes.get(namespace, {}).get(node_name)

    return verify_graph(template.nodes, list(template.secrets), lookup)


def next_fire(expression: str, after: float) -> float:
    """The first fire time of a cron ``expression`` strictly after ``after`` (epoch seconds)."""
    return _cron.next_fire(expression, after)

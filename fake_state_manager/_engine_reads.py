"""The read-only endpoints of the engine (contract §2.2, §2.4, §2.5, §2.17, §7) and its
inspection helpers, as a base class of :class:`~fake_state_manager._engine.Engine`.

Reads change nothing, but they take the engine's lock too, so a reader never sees a half-applied
transition from another thread (the uvicorn thread of ``serve_in_thread``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

from fake_state_manager import _nodes
from fake_state_manager._errors import ApiError
from fake_state_manager._graphs import list_item, template_response
from fake_state_manager._store import Store, check_invariants
from fake_state_manager._views import list_runs, node_details, run_graph, run_summary

__all__ = ["ReadEndpoints", "locked"]

JsonDict = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])


def locked(method: F) -> F:
    """Run ``method`` under the engine's lock (one writer at a time, claims atomic)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return cast(F, wrapper)


class ReadEndpoints:
    """GET endpoints and inspection helpers over ``self.store``, under ``self.lock``."""

    store: Store
    lock: threading.RLock

    @locked
    def list_nodes(self, namespace: str) -> JsonDict:
        """GET ``/nodes/`` (§2.2): ``{"namespace", "count", "nodes": [{"_id", ...}]}``."""
        return _nodes.list_nodes(self.store, namespace)

    @locked
    def namespaces(self) -> JsonDict:
        """GET ``/v0/namespaces`` (§2.17): sorted distinct namespaces of registered nodes."""
        return _nodes.namespaces(self.store)

    @locked
    def get_graph(self, namespace: str, graph_name: str) -> JsonDict:
        """GET ``/graph/{name}`` (§2.4). 404 ``Graph template {g} not found in namespace {ns}``.

        Deviation: returns the stored retry_policy/store_config/triggers (upstream: defaults).
        """
        template = self.store.graphs.get((namespace, graph_name))
        if template is None:
            raise ApiError(404, f"Graph template {graph_name} not found in namespace {namespace}")
        return template_response(
            template, status=template.validation_status, errors=template.validation_errors
        )

    @locked
    def list_graphs(self, namespace: str) -> JsonDict:
        """GET ``/graphs/`` (§2.5): ``{"namespace", "count", "templates": [...]}`` with ``_id``
        keys and opaque (encrypted) secret values."""
        templates = [list_item(t) for (ns, _), t in self.store.graphs.items() if ns == namespace]
        return {"namespace": namespace, "count": len(templates), "templates": templates}

    # -- reads (§7) ------------------------------------------------------------------------------

    @locked
    def list_runs(self, namespace: str, page: int, size: int) -> JsonDict:
        """GET ``/runs/{page}/{size}`` (§2.14, §7.1). ``page < 1`` → 400 (upstream 500);
        ``size == 0`` → all runs; negative ``size`` → ``abs(size)``."""
        return list_runs(self.store, namespace, page, size)

    @locked
    def run_graph(self, namespace: str, run_id: str) -> JsonDict:
        """GET ``/states/run/{run_id}/graph`` (§2.15, §7.2)."""
        return run_graph(self.store, namespace, run_id)

    @locked
    def node_details(self, namespace: str, graph_name: str, run_id: str, node_id: str) -> JsonDict:
        """GET ``/graph/{g}/run/{run_id}/node/{node_id}`` (§2.16)."""
        return node_details(self.store, namespace, graph_name, run_id, node_id)

    # -- inspection helpers (not endpoints) ------------------------------------------------------

    @locked
    def states_of_run(self, run_id: str) -> list[JsonDict]:
        """Every state of a run in creation order, as dicts with the §3.1 fields (``id`` as str)."""
        return [state.to_dict() for state in self.store.run_states.get(run_id, [])]

    @locked
    def run_summary(self, run_id: str) -> JsonDict | None:
        """The run as a §7.1 runs-list item, or ``None`` for an unknown run id."""
        run = self.store.runs.get(run_id)
        return None if run is None else run_summary(self.store, run)

    @locked
    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the store's indexes disagree with its states."""
        check_invariants(self.store)

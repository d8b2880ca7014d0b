"""Read-side shapes of the store: runs list, run graph, node details (contract §7, §2.14-§2.16).

Plain functions over a :class:`~fake_state_manager._store.store.Store`; every count comes from the
store's per-run counters or per-run state lists, never from a scan of all states.
"""

from __future__ import annotations

import re

from fake_state_manager._errors import ApiError
from fake_state_manager._json import JsonDict
from fake_state_manager._store.documents import (
    ALL_STATUSES,
    CREATED,
    ERRORED,
    EXECUTED,
    NEXT_CREATED_ERROR,
    PRUNED,
    QUEUED,
    RETRY_CREATED,
    SUCCESS,
    Run,
    State,
    iso_utc,
)
from fake_state_manager._store.store import Store

__all__ = ["OBJECT_ID", "list_runs", "node_details", "run_graph", "run_summary"]

#: A 24-hex MongoDB ObjectId string (§1.1).
OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")



def run_summary(store: Store, run: Run) -> JsonDict:
    """One runs-list item (§7.1), from the run's status counters."""
    counts = store.run_counts.get(run.run_id, {})

    def total(*statuses: str) -> int:
        return sum(counts.get(status, 0) for status in statuses)

    success = total(SUCCESS, PRUNED)
    pending = total(CREATED, QUEUED, EXECUTED)
    errored = total(ERRORED, NEXT_CREATED_ERROR)
    retried = total(RETRY_CREATED)
    if pending > 0:
        status = "PENDING"
    elif errored > 0:
        status = "FAILED"
    elif success + retried == 0:
        status = "FAILED"  # §3.6: a run with no states is FAILED
    else:
        status = "SUCCESS"
    return {
        "run_id": run.run_id,
        "graph_name": run.graph_name,
        "success_count": success,
        "pending_count": pending,
        "errored_count": errored,
        "retried_count": retried,
        "total_count": total(*ALL_STATUSES),
        "status": status,
        "created_at": iso_utc(run.created_at),
    }


def list_runs(store: Store, namespace: str, page: int, size: int) -> JsonDict:
    """§7.1: newest first, ``skip((page-1)*size)``, ``limit(size)``.

    Deviations (docs/fidelity.md): ``page < 1`` answers 400 (upstream 500); a negative ``size``
    is taken as ``abs(size)`` (Mongo's negative-limit meaning). ``size == 0`` means no limit.
    """
    if page < 1:
        raise ApiError(400, f"page must be >= 1, got {page}")
    runs = store.runs_by_namespace.get(namespace, [])
    limit = abs(size)
    skip = (page - 1) * limit
    # Runs are appended in creation order, so newest-first is the list reversed: slice from the
    # end instead of sorting (O(page), not O(runs)).
    end = max(len(runs) - skip, 0)
    start = 0 if limit == 0 else max(end - limit, 0)
    window = runs[start:end][::-1]
    return {
        "namespace": namespace,
        "total": len(runs),
        "page": page,
        "size": size,
        "runs": [run_summary(store, run) for run in window],
    }


def _graph_node(state: State) -> JsonDict:
    return {
        "id": state.id,
        "node_name": state.node_name,
        "identifier": state.identifier,
        "status": state.status,
        "error": state.error,
    }


def run_graph(store: Store, namespace: str, run_id: str) -> JsonDict:
    """§7.2: the run's states in ``namespace`` as nodes, with direct-parent edges."""
    states = [s for s in store.run_states.get(run_id, []) if s.namespace_name == namespace]
    ids = {s.id for s in states}
    edges = []
    for state in states:
        if state.parents:
            direct_parent = next(reversed(state.parents.values()))
            if direct_parent in ids:
                edges.append({"source": direct_parent, "target": state.id})
    summary = dict.fromkeys(ALL_STATUSES, 0)
    for state in states:
        summary[state.status] += 1
    return {
        "root_states": [_graph_node(s) for s in states if not s.parents],
        "graph_name": states[0].graph_name if states else "",
        "nodes": [_graph_node(s) for s in states],
        "edges": edges,
        "node_count": len(states),
        "edge_count": len(edges),
        "execution_summary": summary,
    }


def node_details(
    store: Store, namespace: str, graph_name: str, run_id: str, node_id: str
) -> JsonDict:
    """§2.16: one state, matched on id, run, graph and namespace."""
    if not OBJECT_ID.fullmatch(node_id):
        raise ApiError(400, f"Invalid node ID format: {node_id}")
    state = store.states.get(node_id.lower())
    if (
        state is None
        or state.run_id != run_id
        or state.graph_name != graph_name
        or state.namespace_name != namespace
    ):
        raise ApiError(404, f"Node {node_id} not found in run {run_id} for graph {graph_name}")
    return {
        "id": state.id,
        "node_name": state.node_name,
        "identifier": state.identifier,
        "graph_name": state.graph_name,
        "run_id": state.run_id,
        "status": state.status,
        "inputs": dict(state.inputs),
        "outputs": dict(state.outputs),
        "error": state.error,
        "parents": dict(state.parents),
        "created_at": iso_utc(state.created_at),
        "updated_at": iso_utc(state.updated_at),
    }

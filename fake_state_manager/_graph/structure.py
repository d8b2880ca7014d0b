"""Root search and upstream's "parents" DFS over a graph template (contract §4.3).

The "parents" of a node are the identifiers its inputs may reference. The DFS reproduces
upstream's, quirks included: children are traversed only on a node's first visit; a unites
node's set is replaced by ``parents(X) | {X}`` on its first visit (later arrivals union into it);
a unites node reached before its target waits, and when the target is visited it only receives a
union (its children are not traversed from there); a target never reached gives
``Graph is disconnected at: {...}``. The DFS is iterative so that a long chain cannot hit
Python's recursion limit. The checks that use it are in :mod:`.checks`.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fake_state_manager._graph.models import NodeTemplate

__all__ = ["GraphStructure", "compute_structure", "find_root", "normalise"]

_Call = tuple[str, frozenset[str], frozenset[str]]
_Activation = Generator[_Call, None, None]


@dataclass(frozen=True, slots=True)
class GraphStructure:
    """What the checks computed, for the engine to reuse.

    Attributes:
        root: The root node's identifier.
        parents: identifier -> the identifiers its inputs may reference (upstream's "parents").
        paths: identifier -> the identifiers on the DFS paths that reached it.
        nodes: identifier -> node template, in template order.
    """

    root: str
    parents: Mapping[str, frozenset[str]]
    paths: Mapping[str, frozenset[str]]
    nodes: Mapping[str, NodeTemplate]


def normalise(nodes: Iterable[NodeTemplate | Mapping[str, Any]]) -> list[NodeTemplate]:
    """Node templates as ``NodeTemplate`` models (dicts are validated)."""
    return [n if isinstance(n, NodeTemplate) else NodeTemplate.model_validate(n) for n in nodes]


def find_root(nodes: list[NodeTemplate]) -> NodeTemplate:
    """The single node with in-degree zero, else ``ValueError`` (contract §4.3, "Root")."""
    in_degree = {node.identifier: 0 for node in nodes}
    for node in nodes:
        for nxt in node.next_nodes or ():
            in_degree[nxt] += 1
        if node.unites is not None:
            # The unites target acts as the node's parent (contract §4.3 "Root").
            in_degree[node.identifier] += 1
    roots = [node for node in nodes if in_degree[node.identifier] == 0]
    if len(roots) != 1:
        raise ValueError(
            "There should be exactly one root node in the graph but found "
            f"{len(roots)} nodes with zero in-degree: {roots}"
        )
    return roots[0]


def compute_structure(nodes: Iterable[NodeTemplate | Mapping[str, Any]]) -> GraphStructure:
    """Find the root and run upstream's "parents" DFS (contract §4.3).

    Expects identifiers to be unique and every ``next_nodes``/``unites`` target to exist
    (:func:`check_graph` checks that first).

    Raises:
        ValueError: ``There should be exactly one root node ...`` or
            ``Error building dependency graph: Graph is disconnected at: {...}``.
    """
    templates = normalise(nodes)
    root = find_root(templates).identifier
    by_id = {node.identifier: node for node in templates}
    parents: dict[str, frozenset[str]] = {ident: frozenset() for ident in by_id}
    paths: dict[str, frozenset[str]] = {ident: frozenset() for ident in by_id}
    visited: set[str] = set()
    awaiting: dict[str, list[str]] = {}

    def visit(ident: str, arriving: frozenset[str], path: frozenset[str]) -> _Activation:
        # One activation of upstream's recursive dfs(); yielded tuples are its recursive calls.
        parents[ident] = arriving | parents[ident]
        paths[ident] = path | paths[ident]
        if ident in visited:
            return
        visited.add(ident)
        node = by_id[ident]
        if node.unites is None:
            for_children = arriving | {ident}
        elif node.unites.identifier in visited:
            target = node.unites.identifier
            parents[ident] = parents[target] | {target}
            for_children = parents[target] | {target}
        else:
            awaiting.setdefault(node.unites.identifier, []).append(ident)
            return
        if ident in awaiting:
            for waiting in awaiting[ident]:
                yield (waiting, for_children, paths[waiting])
            del awaiting[ident]
        for nxt in node.next_nodes or ():
            yield (nxt, for_children, path | {ident})

    stack = [visit(root, frozenset(), frozenset())]
    while stack:
        call = next(stack[-1], None)
        if call is None:
            stack.pop()
        else:
            stack.append(visit(*call))
    if awaiting:
        raise ValueError(f"Error building dependency graph: Graph is disconnected at: {awaiting}")
    return GraphStructure(root=root, parents=parents, paths=paths, nodes=by_id)

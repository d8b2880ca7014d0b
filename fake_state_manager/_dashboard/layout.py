"""A run's states as a layered DAG, laid out server-side for an inline SVG (no JavaScript).

The states of a run and three kinds of edges between them:

- ``parent``: a state's direct parent (the last entry of its ``parents``, contract §3.5), as
  the API's run graph has them (§7.2);
- ``unites``: for a uniting state (``does_unites``), one edge from every finished state of the
  nodes that lead to it in the template (its ``next_nodes``) below the united identifier: the
  branches it waited for (§3.5 step 4), which the direct-parent edge alone does not show;
- ``retry``: from a retried state to the state that retried it (:func:`retry_links`).

The layout is the simplest layered one: a state's level is the longest path to it from a root
over the parent and unites edges; within a level, states are ordered by the mean position of
their sources in the level above (ties: creation order), and each level is centred.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GAP_X",
    "GAP_Y",
    "MARGIN",
    "NODE_H",
    "NODE_W",
    "Edge",
    "Layout",
    "Placed",
    "layout",
    "retry_links",
    "unites_edges",
]


NODE_W = 184
NODE_H = 58
GAP_X = 26
GAP_Y = 60
MARGIN = 16


@dataclass(frozen=True, slots=True)
class Placed:
    """A state's box: top-left corner and level (0 = a root)."""

    id: str
    x: float
    y: float
    level: int


@dataclass(frozen=True, slots=True)
class Edge:
    """One drawn edge; ``d`` is the SVG path."""

    kind: str  # "parent", "unites" or "retry"
    source: str
    target: str
    d: str


@dataclass(slots=True)
class Layout:
    """The SVG's size, the boxes by state id and the edges."""

    width: float
    height: float
    placed: dict[str, Placed] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)


def _direct_parent(state: Mapping[str, Any]) -> str | None:
    parents: Mapping[str, str] = state.get("parents") or {}
    return list(parents.values())[-1] if parents else None


def _is_retry(state: Mapping[str, Any]) -> bool:
    return bool(state["retry_count"]) or bool(state["manual_retry_fanout_id"])


def retry_links(states: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """``{retried state id: id of the state that retried it}``.

    A retry (§5 automatic: ``retry_count`` + 1 and the same ``fanout_id``; §6.3 manual: a new
    ``manual_retry_fanout_id``, ``retry_count`` 0) copies its original's identifier and parents,
    so it is looked for among the earlier states with the same identifier and parents that are
    ``RETRY_CREATED``: for an automatic retry the one with its ``fanout_id`` and one retry less,
    for a manual retry the latest one still without a successor.
    """
    links: dict[str, str] = {}
    waiting: dict[tuple[str, tuple[tuple[str, str], ...]], list[Mapping[str, Any]]] = defaultdict(
        list
    )
    for state in states:  # creation order: an original precedes its retries
        group = waiting[(state["identifier"], tuple((state.get("parents") or {}).items()))]
        if _is_retry(state):
            previous: Mapping[str, Any] | None = None
            if state["retry_count"] and not state["manual_retry_fanout_id"]:
                for candidate in group:
                    if (
                        candidate["fanout_id"] == state["fanout_id"]
                        and candidate["retry_count"] == state["retry_count"] - 1
                    ):
                        previous = candidate
                        break
            if previous is None and group:
                previous = group[-1]
            if previous is not None:
                links[previous["id"]] = state["id"]
                group.remove(previous)
        if state["status"] == "RETRY_CREATED":
            group.append(state)
    return links


def unites_edges(
    states: Sequence[Mapping[str, Any]], template_nodes: Sequence[Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """``(source, target)`` pairs: the branches each uniting state waited for (module doc)."""
    by_identifier = {node.get("identifier"): node for node in template_nodes}
    leads_to: dict[str, set[str]] = defaultdict(set)
    for node in template_nodes:
        for child in node.get("next_nodes") or []:
            leads_to[child].add(str(node.get("identifier")))
    pairs = []
    for state in states:
        if not state.get("does_unites"):
            continue
        unites = (by_identifier.get(state["identifier"]) or {}).get("unites") or {}
        united = unites.get("identifier")
        target_id = (state.get("parents") or {}).get(united) if united else None
        if target_id is None:
            continue
        sources = leads_to.get(state["identifier"], set()) - {united}
        for other in states:
            if (
                other["identifier"] in sources
                and (other.get("parents") or {}).get(united) == target_id
                and other["status"] != "RETRY_CREATED"
            ):
                pairs.append((other["id"], state["id"]))
    return pairs


def _levels(ids: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Longest path from a root (Kahn's order; a cycle, impossible in a run, stays level 0)."""
    incoming: dict[str, int] = dict.fromkeys(ids, 0)
    outgoing: dict[str, list[str]] = defaultdict(list)
    for source, target in edges:
        outgoing[source].append(target)
        incoming[target] += 1
    level = dict.fromkeys(ids, 0)
    ready = [i for i in ids if incoming[i] == 0]
    while ready:
        current = ready.pop()
        for target in outgoing[current]:
            level[target] = max(level[target], level[current] + 1)
            incoming[target] -= 1
            if incoming[target] == 0:
                ready.append(target)
    return level


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    bend = max(abs(y2 - y1) / 2, 24.0)
    return f"M{x1:g},{y1:g} C{x1:g},{y1 + bend:g} {x2:g},{y2 - bend:g} {x2:g},{y2:g}"


def _arc(x1: float, y1: float, x2: float, y2: float) -> str:
    top = min(y1, y2) - 22
    return f"M{x1:g},{y1:g} C{x1:g},{top:g} {x2:g},{top:g} {x2:g},{y2:g}"


def layout(
    states: Sequence[Mapping[str, Any]],
    unites: Sequence[tuple[str, str]] = (),
    retries: Mapping[str, str] | None = None,
) -> Layout:
    """Place ``states`` (creation order) and route their edges (module doc)."""
    ids = [state["id"] for state in states]
    known = set(ids)
    order = {state_id: index for index, state_id in enumerate(ids)}
    parent_edges = []
    for state in states:
        parent = _direct_parent(state)
        if parent is not None and parent in known:
            parent_edges.append((parent, state["id"]))
    unite_edges = [(s, t) for s, t in unites if s in known and t in known]
    level = _levels(ids, [*parent_edges, *unite_edges])
    sources: dict[str, list[str]] = defaultdict(list)
    for source, target in [*parent_edges, *unite_edges]:
        sources[target].append(source)

    rows: dict[int, list[str]] = defaultdict(list)
    for state_id in ids:
        rows[level[state_id]].append(state_id)
    column: dict[str, float] = {}
    for depth in sorted(rows):

        def weight(state_id: str) -> tuple[float, int]:
            above = [column[s] for s in sources[state_id] if s in column]
            return (sum(above) / len(above) if above else -1.0, order[state_id])

        rows[depth].sort(key=weight)
        for index, state_id in enumerate(rows[depth]):
            column[state_id] = index
    widest = max((len(row) for row in rows.values()), default=0)
    width = 2 * MARGIN + max(widest * (NODE_W + GAP_X) - GAP_X, 0)
    height = 2 * MARGIN + max(len(rows) * (NODE_H + GAP_Y) - GAP_Y, 0) + 12
    result = Layout(width=width, height=height)
    for depth, row in rows.items():
        row_width = len(row) * (NODE_W + GAP_X) - GAP_X
        left = (width - row_width) / 2
        for index, state_id in enumerate(row):
            x = left + index * (NODE_W + GAP_X)
            y = MARGIN + 12 + depth * (NODE_H + GAP_Y)
            result.placed[state_id] = Placed(state_id, x, y, depth)

    def down(kind: str, source: str, target: str) -> Edge:
        a, b = result.placed[source], result.placed[target]
        d = _curve(a.x + NODE_W / 2, a.y + NODE_H, b.x + NODE_W / 2, b.y - 2)
        return Edge(kind, source, target, d)

    result.edges += [down("parent", s, t) for s, t in parent_edges]
    result.edges += [down("unites", s, t) for s, t in unite_edges]
    for source, target in (retries or {}).items():
        if source in known and target in known:
            a, b = result.placed[source], result.placed[target]
            d = _arc(a.x + NODE_W / 2, a.y, b.x + NODE_W / 2, b.y - 2)
            result.edges.append(Edge("retry", source, target, d))
    return result

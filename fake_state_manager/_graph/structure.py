"""Root search and upstream's "parents" DFS over a graph template (contract §4.3).

The "parents" of a node are the identifiers its inputs may reference. The DFS reproduces
upstream's, quirks included: children are traversed only on a node's first visit; a unites
node's set is replaced by ``parents(X) | {X}`` on its first visit (later arrivals union into it);
a unites node reached before its target waits, and when the target is visited it only receives a
union (its children are not traversed from there); a target never reached gives
``Graph is disconnected at: {...}``. The DFS is iterative so that a long chain cannot hit
Python's recursion limit. The checks that use it are in :mod:`.checks`.

Cost (issue #9). Upstream materialises one Python set per node, as this module once did: that is
quadratic for a chain (a 10,000-node chain took 35 s and 9 GB here). We run the same DFS but
record only what determines those sets, in O(nodes + edges):

- When a node is first visited it hands its children one set, ``FC``: for an ordinary node,
  ``FC(tree parent) | {node}``, that is the DFS-tree path up to the nearest unites node above it
  (its *top*) plus that top's ``FC``; for a unites node U with target X, ``parents(X) | {X}``
  *as it is at that moment*. Each such set is named by its node (a *handle*).
- ``parents(N)`` is the union of the handles that arrived at N, in arrival order
  (:attr:`GraphStructure.arrivals`). A unites node's first arrival is replaced by its own
  handle; a waiting unites node also receives its target's handle. ``parents(X)`` "at that
  moment" is therefore a prefix of X's arrival list.

Questions are then answered without building sets: the root is in every handle, so it is a
parent of exactly the nodes something arrived at; "is A on the tree path of handle P, below P's
top" is an interval test on DFS entry/exit times. Only a question those cannot answer (A comes
from a unites target's own parents, or A is not a parent at all) falls back to bitsets, built
lazily, memoised, and only for the handles it depends on: Python ints, where a union is a C-level
OR over n/30 machine digits. A chain or a star never needs one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from fake_state_manager._graph.models import NodeTemplate

__all__ = ["GraphStructure", "compute_structure", "find_root"]

_NONE = -1

#: A node with more arrivals than this answers "is X a parent?" from its bitset (built once)
#: rather than by scanning its arrivals per question, so many questions to a node that many
#: edges reach stay linear.
_SCAN_LIMIT = 16


@dataclass(frozen=True, slots=True, eq=False)
class GraphStructure:
    """What the DFS recorded, and the questions the checks ask of it (contract §4.3).

    Positions are indices in template order. A *handle* is a node position standing for the set
    that node passed to its children (see the module docstring).

    Attributes:
        root: The root node's identifier.
        nodes: identifier -> node template, in template order.
        index: identifier -> position.
        arrivals: per position, the handles unioned into its parents, in arrival order; ``~h``
            marks a handle received as a waiting unites node (no edge was walked), and a unites
            node's list starts with its own handle (its first arrival was replaced).
        tree_parent: per position, the node whose first visit walked to it (-1: root, unvisited).
        top: per position, the nearest unites node at or above it on the DFS tree (-1: none).
        entry / exit: per position, DFS entry time and exit time (-1: never visited); A is a
            tree ancestor of B (or B itself) when ``entry[A] <= entry[B] < exit[A]``.
        cyclic: per position, whether a walked edge reached it while it was on the DFS path.
        snapshots: unites position -> (its target's arrival list, length at the first visit).
        targets: per position, its unites target's position (-1: no unites).
    """

    root: str
    nodes: Mapping[str, NodeTemplate]
    index: Mapping[str, int]
    arrivals: Sequence[list[int]]
    tree_parent: Sequence[int]
    top: Sequence[int]
    entry: Sequence[int]
    exit: Sequence[int]
    cyclic: Sequence[bool]
    snapshots: Mapping[int, tuple[list[int], int]]
    targets: Sequence[int]
    _handle_bits: dict[int, int] = field(default_factory=dict, repr=False)
    _last_node_bits: list[int] = field(default_factory=lambda: [_NONE, 0], repr=False)

    @property
    def parents(self) -> Mapping[str, frozenset[str]]:
        """identifier -> the identifiers its inputs may reference (upstream's "parents").

        Each lookup decodes one set (linear in the graph); the checks use :meth:`is_parent`.
        """
        return _Decoded(self, self._decode_parents)

    @property
    def paths(self) -> Mapping[str, frozenset[str]]:
        """identifier -> the identifiers on the DFS paths that reached it (decoded per lookup)."""
        return _Decoded(self, self._decode_paths)

    def is_parent(self, candidate: str, of: str) -> bool:
        """Whether ``candidate`` is among the computed parents of node ``of`` (contract §4.3).

        An identifier that is not a node of the graph is nobody's parent.
        """
        position = self.index.get(candidate)
        if position is None:
            return False
        node = self.index[of]
        arrived = self.arrivals[node]
        if position == self.index[self.root]:
            # Every handle holds the root: the root's is {root}, an ordinary node's extends its
            # tree parent's, a unites node's is a visited target's non-empty parents (or the root).
            return bool(arrived)
        if len(arrived) <= _SCAN_LIMIT:
            for entry in arrived:
                handle = entry if entry >= 0 else ~entry
                if self._on_segment(position, handle):
                    return True
                top = self.top[handle]
                if top != _NONE and self.targets[top] == position:
                    return True  # a unites node's set holds its target
        return bool(self._parent_bits(node) >> position & 1)

    def on_own_path(self, ident: str) -> bool:
        """Whether node ``ident`` lies on a DFS path that reached it (contract §4.3 "Acyclic")."""
        return self.cyclic[self.index[ident]]

    # -- internals ------------------------------------------------------------------------------

    def _on_segment(self, position: int, handle: int) -> bool:
        # In FC(handle) through the tree path: an ancestor-or-self of the handle, strictly below
        # the handle's top (a unites node itself is not in the set it hands on).
        top = self.top[handle]
        return (
            self.entry[position] <= self.entry[handle] < self.exit[position]
            and self.top[position] == top
            and position != top
        )

    def _parent_bits(self, node: int) -> int:
        # The checks ask about one node at a time: keep the last node's bitset only.
        last = self._last_node_bits
        if last[0] != node:
            bits = 0
            for entry in self.arrivals[node]:
                bits |= self._bits_of(entry if entry >= 0 else ~entry)
            last[:] = [node, bits]
        return last[1]

    def _bits_of(self, handle: int) -> int:
        """The bitset of FC(handle), computing (and memoising) the handles it depends on."""
        memo = self._handle_bits
        if handle in memo:
            return memo[handle]
        pending = [handle]
        while pending:
            current = pending[-1]
            if current in memo:
                pending.pop()
                continue
            snapshot = self.snapshots.get(current)
            if snapshot is None:
                parent = self.tree_parent[current]
                if parent != _NONE and parent not in memo:
                    pending.append(parent)
                    continue
                memo[current] = (memo[parent] if parent != _NONE else 0) | 1 << current
            else:
                listed, length = snapshot
                needed = [h for h in _handles(listed, length) if h not in memo]
                if needed:
                    pending.extend(needed)
                    continue
                bits = 1 << self.targets[current]
                for h in _handles(listed, length):
                    bits |= memo[h]
                memo[current] = bits
            pending.pop()
        return memo[handle]

    def _decode_parents(self, node: int) -> Iterable[int]:
        digits = bin(self._parent_bits(node))[:1:-1]  # position i is the i-th digit from the end
        return (i for i, digit in enumerate(digits) if digit == "1")

    def _decode_paths(self, node: int) -> Iterable[int]:
        # The path of an edge from P is P and its tree ancestors; a unites node's first arrival
        # (replaced in ``arrivals`` by its own handle) came from its tree parent.
        found: set[int] = set()
        for i, entry in enumerate(self.arrivals[node]):
            if entry < 0:
                continue
            source = self.tree_parent[node] if i == 0 and node in self.snapshots else entry
            while source != _NONE and source not in found:
                found.add(source)
                source = self.tree_parent[source]
        return found


def _handles(listed: list[int], length: int) -> Iterator[int]:
    for i in range(length):
        entry = listed[i]
        yield entry if entry >= 0 else ~entry


class _Decoded(Mapping[str, frozenset[str]]):
    """identifier -> a set of identifiers, decoded from the structure when asked for."""

    __slots__ = ("_decode", "_structure")

    def __init__(self, structure: GraphStructure, decode: Callable[[int], Iterable[int]]) -> None:
        self._structure = structure
        self._decode = decode

    def __getitem__(self, ident: str) -> frozenset[str]:
        order = list(self._structure.nodes)
        return frozenset(order[i] for i in self._decode(self._structure.index[ident]))

    def __iter__(self) -> Iterator[str]:
        return iter(self._structure.nodes)

    def __len__(self) -> int:
        return len(self._structure.nodes)


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


def compute_structure(nodes: Sequence[NodeTemplate]) -> GraphStructure:
    """Find the root and run upstream's "parents" DFS (contract §4.3), in O(nodes + edges).

    Expects identifiers to be unique and every ``next_nodes``/``unites`` target to exist
    (:func:`check_graph` checks that first). Each step of the loop is one call of upstream's
    recursive ``dfs(node, parents, path)``, in the same order; what it records instead of the
    sets is described in the module docstring.

    Raises:
        ValueError: ``There should be exactly one root node ...`` or
            ``Error building dependency graph: Graph is disconnected at: {...}``.
    """
    templates = list(nodes)
    root = find_root(templates).identifier
    by_id = {node.identifier: node for node in templates}
    index = {ident: position for position, ident in enumerate(by_id)}
    order = list(by_id)
    size = len(order)
    children = [[index[nxt] for nxt in node.next_nodes or ()] for node in by_id.values()]
    targets = [
        _NONE if node.unites is None else index[node.unites.identifier] for node in by_id.values()
    ]
    arrivals: list[list[int]] = [[] for _ in range(size)]
    tree_parent = [_NONE] * size
    top = [_NONE] * size
    entry = [_NONE] * size
    exit_ = [_NONE] * size
    cyclic = [False] * size
    on_path = [False] * size
    visited = [False] * size
    snapshots: dict[int, tuple[list[int], int]] = {}
    # target identifier -> the unites nodes waiting for it, both in arrival order (upstream's
    # dict, printed as is in the "disconnected" message).
    awaiting: dict[str, list[str]] = {}
    clock = 0

    # Each frame: (the node walking its children, the children still to walk).
    stack: list[tuple[int, Iterator[int]]] = [(_NONE, iter((index[root],)))]
    while stack:
        source, pending = stack[-1]
        current = next(pending, None)
        if current is None:
            stack.pop()
            if source != _NONE:
                on_path[source] = False
                exit_[source] = clock
            continue
        if source != _NONE:
            arrivals[current].append(source)
            if on_path[current]:
                cyclic[current] = True
        if visited[current]:
            continue
        visited[current] = True
        tree_parent[current] = source
        entry[current] = clock
        clock += 1
        target = targets[current]
        if target == _NONE:
            top[current] = top[source] if source != _NONE else _NONE
        elif visited[target]:
            # parents(target) as it is now: a prefix of its (append-only) arrival list. The
            # node's own list is replaced, so a node uniting itself keeps its first arrival.
            snapshots[current] = (arrivals[target], len(arrivals[target]))
            arrivals[current] = [current]
            top[current] = current
        else:
            awaiting.setdefault(order[target], []).append(order[current])
            exit_[current] = clock
            continue
        # Upstream calls dfs() on each waiting unites node; those are visited already, so the
        # call only unions this node's set into theirs.
        for waiting in awaiting.pop(order[current], ()):
            arrivals[index[waiting]].append(~current)
        if children[current]:
            on_path[current] = True
            stack.append((current, iter(children[current])))
        else:
            exit_[current] = clock
    if awaiting:
        raise ValueError(f"Error building dependency graph: Graph is disconnected at: {awaiting}")
    return GraphStructure(
        root=root,
        nodes=by_id,
        index=index,
        arrivals=arrivals,
        tree_parent=tree_parent,
        top=top,
        entry=entry,
        exit=exit_,
        cyclic=cyclic,
        snapshots=snapshots,
        targets=targets,
    )

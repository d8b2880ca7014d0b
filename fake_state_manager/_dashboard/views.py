"""What the dashboard's pages show, computed from the engine's reads (no HTTP, no templates).

Every function takes the JSON-ready dicts the engine's read methods return (the same the API
serves: runs list §7.1, graph template §2.4, nodes §2.2, a run's states §3.1) and shapes them for
a template. Secret *values* never get here: the graph template read has ``{name: true}``, and
the graphs list's opaque values are reduced to their names by :func:`graph_rows`.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from exo_ref import RunStatus
from fake_state_manager._dashboard.layout import Layout, layout, retry_links, unites_edges
from fake_state_manager._json import JsonDict

__all__ = [
    "MAX_DRAWN_STATES",
    "REENQUEUE_STATUSES",
    "RETRY_STATUSES",
    "RUN_STATUSES",
    "GraphRow",
    "RunView",
    "StateView",
    "graph_rows",
    "page_of",
    "pretty",
    "retry_fanout_id",
    "run_view",
]


#: A run's statuses as the runs list computes them (§7.1): the status filter's choices.
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
#: States the run page offers a manual retry for (§6.3): the failures of a run's counts (§7.1).
RETRY_STATUSES = ("ERRORED", "NEXT_CREATED_ERROR")
#: States the run page offers a re-enqueue for (§6.2): claimed by a runtime that never reported.
REENQUEUE_STATUSES = ("QUEUED",)
#: Larger runs get the states table only: an SVG of thousands of boxes helps no one.
MAX_DRAWN_STATES = 400


def pretty(value: Any) -> str:
    """Indented JSON for a ``<pre>`` (NaN and the like as Python's json writes them)."""
    return json.dumps(value, indent=2, ensure_ascii=False, allow_nan=True, default=str)


def page_of(items: Sequence[JsonDict], page: int, size: int) -> list[JsonDict]:
    """The list API's paging (§7.1): ``skip((page-1)*|size|)``, ``limit(|size|)``, 0 = all."""
    limit = abs(size)
    skip = (page - 1) * limit
    return list(items[skip : skip + limit] if limit else items)


@dataclass(frozen=True, slots=True)
class GraphRow:
    """One graph template of a namespace's page (secret names only)."""

    name: str
    validation_status: str
    validation_errors: list[str]
    node_count: int
    trigger_count: int
    secret_names: list[str]
    updated_at: str


def graph_rows(templates: Sequence[Mapping[str, Any]]) -> list[GraphRow]:
    """The graphs list (§2.5) without its opaque secret values, sorted by name."""
    rows = [
        GraphRow(
            name=str(t["name"]),
            validation_status=str(t["validation_status"]),
            validation_errors=[str(e) for e in t.get("validation_errors") or []],
            node_count=len(t.get("nodes") or []),
            trigger_count=len(t.get("triggers") or []),
            secret_names=sorted(str(name) for name in t.get("secrets") or {}),
            updated_at=str(t.get("updated_at", "")),
        )
        for t in templates
    ]
    return sorted(rows, key=lambda row: row.name)


#: Names the manual-retry fanout ids of the dashboard (uuid5 under it).
_RETRY_NAMESPACE = uuid.UUID("4f0c6d2e-8a31-4c55-9d0e-5b7f3c1a2e90")


def retry_fanout_id(state_id: str) -> str:
    """The ``fanout_id`` the run page's retry form sends for ``state_id`` (§2.12 wants a new
    uuid): a uuid5 of the state id, unique per retried state and the same on every render, so
    a live refresh changes nothing when the run did not, and a form sent twice can never make
    two retries of one state (the second is refused: the state is no longer errored, or the
    API's 409 ``Duplicate retry state detected``)."""
    return str(uuid.uuid5(_RETRY_NAMESPACE, state_id))


@dataclass(slots=True)
class StateView:
    """One state of the run page: the §3.1 fields plus what the page links and offers."""

    doc: JsonDict
    #: ``[(identifier, state id, whether that state is in this run's view)]``, oldest first.
    parents: list[tuple[str, str, bool]]
    children: list[str]
    previous: str | None  # the state this one retried
    next: str | None  # the state that retried this one
    fanout: str  # "2/3" for the items of a fan-out, else ""
    can_retry: bool
    can_reenqueue: bool
    fanout_id_for_retry: str  # the manual-retry form's fanout_id (:func:`retry_fanout_id`)

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def status(self) -> str:
        return str(self.doc["status"])

    @property
    def short_id(self) -> str:
        return self.id[-8:]


@dataclass(slots=True)
class RunView:
    """The run page: its summary, its states and their drawing."""

    namespace: str
    summary: JsonDict
    states: list[StateView]
    layout: Layout | None  # None when the run has more than MAX_DRAWN_STATES states
    by_id: dict[str, StateView] = field(default_factory=dict)
    identifiers: list[tuple[str, int]] = field(default_factory=list)
    status_counts: list[tuple[str, int]] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.summary["run_id"])

    @property
    def finished(self) -> bool:
        return bool(self.summary["status"] != "PENDING")


def run_view(
    namespace: str,
    summary: JsonDict,
    states: Sequence[JsonDict],
    template_nodes: Sequence[Mapping[str, Any]],
) -> RunView:
    """Assemble the run page from the run's summary (§7.1), its states and its template's nodes
    (empty when the template is gone: the unites edges are then not drawn)."""
    known = {state["id"] for state in states}
    links = retry_links(states)
    previous = {new: old for old, new in links.items()}
    children: dict[str, list[str]] = defaultdict(list)
    for state in states:
        parents = state.get("parents") or {}
        if parents:
            children[list(parents.values())[-1]].append(state["id"])
    # Fan-out items: the states of one identifier and the same parents that are not retries
    # (§3.4: the extra items are copies of the original with new fanout ids).
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = defaultdict(list)
    for state in states:
        if not (state["retry_count"] or state["manual_retry_fanout_id"]):
            key = (state["identifier"], tuple((state.get("parents") or {}).items()))
            groups[key].append(state["id"])
    fanout: dict[str, str] = {}
    for members in groups.values():
        if len(members) > 1:
            for index, state_id in enumerate(members, start=1):
                fanout[state_id] = f"{index}/{len(members)}"
    views = [
        StateView(
            doc=state,
            parents=[
                (ident, pid, pid in known) for ident, pid in (state.get("parents") or {}).items()
            ],
            children=children.get(state["id"], []),
            previous=previous.get(state["id"]),
            next=links.get(state["id"]),
            fanout=fanout.get(state["id"], ""),
            can_retry=state["status"] in RETRY_STATUSES,
            can_reenqueue=state["status"] in REENQUEUE_STATUSES,
            fanout_id_for_retry=retry_fanout_id(state["id"]),
        )
        for state in states
    ]
    drawing = None
    if len(states) <= MAX_DRAWN_STATES:
        drawing = layout(states, unites_edges(states, template_nodes), links)
    identifiers = Counter(state["identifier"] for state in states)
    statuses = Counter(state["status"] for state in states)
    return RunView(
        namespace=namespace,
        summary=summary,
        states=views,
        layout=drawing,
        by_id={view.id: view for view in views},
        identifiers=sorted(identifiers.items()),
        status_counts=sorted(statuses.items()),
    )

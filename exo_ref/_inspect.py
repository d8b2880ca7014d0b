"""``exo-ref runs | run | retry | graph``: look at a state manager from the shell (issue 10).

Works against any state manager that speaks the contract (the fake or upstream's server), through
:class:`~exo_ref.StateManager`. The server comes from ``--uri`` / ``--key`` or, when they are not
given, ``EXOSPHERE_STATE_MANAGER_URI`` / ``EXOSPHERE_API_KEY`` (read by :mod:`exo_ref._config`).

* ``runs``: one page of runs as a table (contract §2.14, §7.1); ``--status`` keeps the runs of
  that page with that status (the API has no status filter);
* ``run RUN_ID``: the run's states as a tree along the parent -> child edges of the run graph
  (§2.15, §7.2), each with its status, error (first line, shortened), retry number and timing
  (from each state's ``created_at`` / ``updated_at``, one node-details read per state, §2.16);
* ``retry STATE_ID``: the manual-retry endpoint (§2.12, §6.3) with a fresh ``str(uuid4())``
  as ``fanout_id``, as upstream's dashboard sends; prints the new state's id;
* ``graph NAME``: the template (§2.4): validation status and errors, nodes with their
  ``next_nodes`` and ``unites``, triggers, retry policy, and the *names* of its secrets.

``--json`` prints the state manager's own answer instead (for ``runs --status``, with ``runs``
filtered). Output goes through ``rich``: colour only on a terminal, never with ``NO_COLOR``;
server text is always shown as plain text (never read as markup).

Errors a user can hit (no URI or key, a refused key, an unknown run, a server that is not
there) are one line on stderr and exit status 1; the API key never appears in them.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TextIO, TypeVar

import anyio
import httpx
from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ._calls import redact
from ._config import (
    ENV_API_KEY,
    ENV_STATE_MANAGER_URI,
    resolve_api_key,
    resolve_state_manager_uri,
)
from ._errors import (
    AuthenticationError,
    ExoRefError,
    StateManagerTimeoutError,
    StateManagerTLSError,
    StateManagerUnavailableError,
)
from ._state_manager import StateManager
from ._statuses import RUN_STATUSES, run_status
from ._wire import (
    GraphTemplate,
    ManualRetryResponse,
    NodeDetails,
    RunGraph,
    RunGraphNode,
    RunsPage,
    RunSummary,
    StoredGraphTemplate,
)

__all__ = [
    "COMMANDS",
    "add_commands",
    "derive_retry_numbers",
    "run_command",
]

T = TypeVar("T")

COMMANDS = ("runs", "run", "retry", "graph")
DEFAULT_PAGE_SIZE = 20
#: How many node-details reads ``exo-ref run`` keeps in flight at once.
DETAIL_CONCURRENCY = 8
#: Errors are shown up to this many characters (their first line).
ERROR_WIDTH = 60

_STATUS_STYLES = {
    "SUCCESS": "green",
    "PRUNED": "magenta",
    "ERRORED": "bold red",
    "NEXT_CREATED_ERROR": "bold red",
    "FAILED": "bold red",
    "RETRY_CREATED": "yellow",
    "PENDING": "cyan",
    "CREATED": "cyan",
    "QUEUED": "blue",
    "EXECUTED": "blue",
    "VALID": "green",
    "INVALID": "bold red",
    "ONGOING": "cyan",
}


class _CommandError(Exception):
    """A problem worth one line on stderr and exit status 1."""


# -- parser --------------------------------------------------------------------------------------


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    positive_int: Callable[[str], int],
) -> None:
    """Add the four inspection subcommands to ``exo-ref``'s parser."""
    common = argparse.ArgumentParser(add_help=False)
    server = common.add_argument_group("state manager")
    server.add_argument(
        "--uri", metavar="URI",
        help=f"base URI such as http://localhost:8000 (default: ${ENV_STATE_MANAGER_URI})",
    )
    server.add_argument(
        "--key", metavar="KEY",
        help=f"API key (default: ${ENV_API_KEY}, which other users of the machine cannot see "
        "in the process list)",
    )
    common.add_argument("--namespace", "-n", required=True, metavar="NS",
                        help="the namespace of the runs and graphs")
    common.add_argument("--json", action="store_true",
                        help="print the state manager's JSON answer instead of a table")

    runs = commands.add_parser(
        "runs", parents=[common], help="list runs with their status and state counts",
        description="One page of the namespace's runs, newest first, with state counts.",
    )
    runs.add_argument("--status", type=str.upper, choices=RUN_STATUSES, default=None,
                      help="only the runs of this page with this status")
    runs.add_argument("--page", type=positive_int, default=1, metavar="N",
                      help="page number (default: %(default)s)")
    runs.add_argument("--size", type=positive_int, default=DEFAULT_PAGE_SIZE, metavar="N",
                      help="runs per page (default: %(default)s)")

    # The commands that take one identifier: (name, help, description, its metavar).
    single = (
        ("run", "show a run's states as a tree",
         "The run's states along their parent -> child edges, with status, error, retry "
         "number and timing (+start after the run's first state, and how long it took).",
         "run_id"),
        ("retry", "retry a state by hand (a new state is created)",
         "Call the manual-retry endpoint with a fresh fanout id: a copy of the state is "
         "created (with a fresh retry budget) and the original becomes RETRY_CREATED.",
         "state_id"),
        ("graph", "show a graph template and its validation",
         "The template's validation status and errors, its nodes, triggers, retry policy "
         "and the names of its secrets (never their values).",
         "name"),
    )
    for name, summary, description, argument in single:
        command = commands.add_parser(
            name, parents=[common], help=summary, description=description
        )
        command.add_argument(argument, metavar=argument.upper())


# -- running a command ---------------------------------------------------------------------------


def run_command(
    args: argparse.Namespace,
    *,
    out: TextIO,
    err: TextIO,
    transport: httpx.AsyncBaseTransport | None = None,
    width: int | None = None,
) -> int:
    """Run one inspection subcommand; returns the exit status (0, or 1 after a message)."""
    command: str = args.command
    key = resolve_api_key(args.key)
    try:
        uri, sm = _client(args, key, transport)
        console = Console(
            file=out, width=width, markup=False, emoji=False, highlight=False,
        )
        return anyio.run(_dispatch, command, args, sm, console, out, uri)
    except KeyboardInterrupt:
        print(f"exo-ref {command}: interrupted", file=err)
        return 130
    except (_CommandError, ExoRefError) as error:
        message = _describe(error, resolve_state_manager_uri(args.uri), given=args.uri is not None)
        print(f"exo-ref {command}: {_one_line(message, key)}", file=err)
        return 1


def _client(
    args: argparse.Namespace, key: str | None, transport: httpx.AsyncBaseTransport | None
) -> tuple[str, StateManager]:
    uri = resolve_state_manager_uri(args.uri)
    if not uri:
        raise _CommandError(f"no state manager URI: pass --uri or set {ENV_STATE_MANAGER_URI}")
    if not key:
        raise _CommandError(f"no API key: pass --key or set {ENV_API_KEY}")
    try:
        parsed = httpx.URL(uri)
    except httpx.InvalidURL as error:
        raise _CommandError(f"the state manager URI {uri!r} is not a valid URL: {error}") from None
    if not parsed.host and uri.startswith(("http://", "https://")):
        raise _CommandError(f"the state manager URI {uri!r} names no host")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise _CommandError(f"the state manager URI {uri!r} has a port out of range")
    return uri, StateManager(args.namespace, uri, key, transport=transport)


def _describe(error: Exception, uri: str | None, *, given: bool) -> str:
    if isinstance(error, AuthenticationError):
        return (
            f"the state manager refused the API key ({error.status_code} {error.detail}); "
            f"check --key or {ENV_API_KEY}"
        )
    if isinstance(error, StateManagerUnavailableError) and not isinstance(
        error, StateManagerTLSError | StateManagerTimeoutError
    ):
        cause = error.__cause__
        reason = f"{type(cause).__name__}: {cause}" if cause is not None else str(error)
        where = "--uri" if given else ENV_STATE_MANAGER_URI
        return (
            f"cannot reach the state manager at {uri}: {reason}; check {where} and that the "
            "state manager is running"
        )
    return str(error)


def _one_line(text: str, key: str | None) -> str:
    return " ".join(redact(text, key).split())


async def _dispatch(
    command: str,
    args: argparse.Namespace,
    sm: StateManager,
    console: Console,
    out: TextIO,
    uri: str,
) -> int:
    try:
        async with sm:
            answer, view = await _fetch(command, args, sm)
        rendered = None if args.json else view()
    except ExoRefError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        # A JSON object without the contract's fields: another server behind the URI.
        raise _CommandError(
            f"the state manager's answer does not have the expected shape "
            f"({type(error).__name__}: {error}); is {uri} an Exosphere state manager?"
        ) from None
    if rendered is None:
        out.write(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
        out.flush()
    else:
        console.print(rendered)
    return 0


async def _fetch(
    command: str, args: argparse.Namespace, sm: StateManager
) -> tuple[Any, Callable[[], RenderableType]]:
    """The API's answer for ``command`` and how to render it (plus what only the view needs)."""
    if command == "runs":
        page = await sm.list_runs(args.page, args.size)
        if args.status is not None:
            page = _filtered(page, args.status)
        return page, partial(runs_view, page, args.status)
    if command == "run":
        graph = await sm.get_run_graph(args.run_id)
        if not _nodes(graph):
            raise _CommandError(
                f"run {args.run_id} has no states in namespace {args.namespace}: check the run "
                "id and --namespace"
            )
        details = {} if args.json else await _node_details(sm, graph, args.run_id)
        return graph, partial(run_view, graph, details, args.run_id)
    if command == "retry":
        answer = await sm.manual_retry(args.state_id, str(uuid.uuid4()))
        return answer, partial(retry_view, args.state_id, answer)
    template = await sm.get_graph(args.name)
    stored = None if args.json else await _stored_template(sm, args.name)
    return template, partial(graph_view, template, stored, args.name, args.namespace)


def _filtered(page: RunsPage, status: str) -> RunsPage:
    runs = [run for run in page.get("runs") or [] if run.get("status") == status]
    return {**page, "runs": runs}


def _nodes(graph: RunGraph) -> list[RunGraphNode]:
    nodes = graph["nodes"]
    if not isinstance(nodes, list):
        raise TypeError(f"'nodes' is {type(nodes).__name__}, not a list")
    return nodes


async def _node_details(
    sm: StateManager, graph: RunGraph, run_id: str
) -> dict[str, NodeDetails]:
    """Every state's node details (for timing), :data:`DETAIL_CONCURRENCY` reads at a time."""
    graph_name = str(graph.get("graph_name", ""))
    ids = [str(node["id"]) for node in _nodes(graph)]
    results = await _gather(
        [partial(sm.get_node, graph_name, run_id, state_id) for state_id in ids],
        DETAIL_CONCURRENCY,
    )
    return dict(zip(ids, results, strict=True))


async def _gather(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Run ``calls`` with at most ``limit`` at once; the first failure is raised as itself."""
    results: dict[int, T] = {}
    failure: list[Exception] = []
    limiter = anyio.CapacityLimiter(limit)

    async def one(index: int, scope: anyio.CancelScope) -> None:
        async with limiter:
            try:
                results[index] = await calls[index]()
            except Exception as error:  # noqa: BLE001 - re-raised below, outside the group
                failure.append(error)
                scope.cancel()

    async with anyio.create_task_group() as tg:
        for index in range(len(calls)):
            tg.start_soon(one, index, tg.cancel_scope)
    if failure:
        raise failure[0]
    return [results[index] for index in range(len(calls))]


async def _stored_template(sm: StateManager, name: str) -> StoredGraphTemplate | None:
    """The template as listed by ``/graphs/`` (contract §2.5), or None.

    Upstream's GET of one graph always shows the default retry policy and no triggers
    (contract §2.4); the list has the stored ones. Only those fields are read from it: the list
    also carries the secrets' ciphertexts, which are never shown.
    """
    try:
        listing = await sm.list_graphs()
    except ExoRefError:
        return None
    for template in listing.get("templates") or []:
        if isinstance(template, dict) and template.get("name") == name:
            return template
    return None


# -- views ---------------------------------------------------------------------------------------


def _status(status: object) -> Text:
    text = str(status)
    return Text(text, style=_STATUS_STYLES.get(text, ""))


#: Sorts first: a state whose time is missing or unreadable.
_EARLIEST = datetime.min.replace(tzinfo=UTC)


def _short_time(value: object) -> str:
    """``2026-01-01T12:00:00.123000`` as ``2026-01-01 12:00:00``; other text unchanged."""
    parsed = _parse_time(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S") if parsed is not None else str(value or "")


def _parse_time(value: object) -> datetime | None:
    """An ISO time as an aware datetime; one without an offset is UTC, as the server writes it.

    Aware throughout, so times with and without an offset still compare and subtract.
    """
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return (later - earlier).total_seconds()


def format_duration(seconds: float) -> str:
    """``0.042s``, ``3.2s``, ``4m05s``, ``2h03m``."""
    if seconds < 10:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def short_error(error: object, width: int = ERROR_WIDTH) -> str:
    """The first line of ``error``, cut to ``width`` characters (``…`` marks a cut)."""
    text = str(error).strip()
    lines = text.splitlines() or [""]
    first = lines[0].strip()
    if len(first) > width:
        return first[: width - 1].rstrip() + "…"
    return first + (" …" if len(lines) > 1 else "")


def runs_view(page: RunsPage, status: str | None) -> RenderableType:
    runs = page["runs"]
    total = page.get("total", len(runs))
    caption = (
        f"page {page.get('page', 1)}, {page.get('size', len(runs))} per page, "
        f"{total} run{'' if total == 1 else 's'} in total"
    )
    if status is not None:
        caption += f"; {len(runs)} {status} on this page"
    table = Table(
        title=Text(f"Runs in namespace {page.get('namespace', '')}", style="bold"),
        caption=caption, caption_justify="left", title_justify="left",
        box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
    )
    # Run ids are what `exo-ref run` takes: never shortened, other columns give way first.
    table.add_column("run id", no_wrap=True, overflow="fold", min_width=36)
    table.add_column("graph", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("states")
    table.add_column("created")
    for run in runs:
        table.add_row(
            Text(str(run["run_id"])),
            Text(str(run["graph_name"])),
            _status(run["status"]),
            _counts(run),
            Text(_short_time(run["created_at"])),
        )
    return table


def _counts(run: RunSummary) -> Text:
    """``7: 5 ok, 1 errored, 1 retried`` (the total, then the non-zero counts of §7.1)."""
    text = Text(f"{run['total_count']}")
    parts = [
        (run["success_count"], "ok", "green"),
        (run["pending_count"], "pending", "cyan"),
        (run["errored_count"], "errored", "red"),
        (run["retried_count"], "retried", "yellow"),
    ]
    shown = [(count, name, style) for count, name, style in parts if count]
    for index, (count, name, style) in enumerate(shown):
        text.append(": " if index == 0 else ", ")
        text.append(f"{count} {name}", style=style)
    return text


@dataclass(frozen=True, slots=True)
class _Placed:
    node: RunGraphNode
    index: int
    created: datetime | None


def derive_retry_numbers(
    siblings: Sequence[RunGraphNode], created: Mapping[str, datetime | None]
) -> dict[str, int]:
    """How many retries came before each state, among states of one parent.

    The API does not serve ``retry_count``. A retry (automatic or manual) gets the same
    identifier and parent as the state it replaces, which becomes RETRY_CREATED (contract §5,
    §6.3): so a state's retry number is the count of RETRY_CREATED siblings of its identifier
    created before it. Fan-out copies of one attempt share its number.
    """
    ordered = sorted(
        (_Placed(node, index, created.get(str(node["id"]))) for index, node in
         enumerate(siblings)),
        key=lambda placed: (placed.created or _EARLIEST, placed.index),
    )
    seen: dict[str, int] = {}
    numbers: dict[str, int] = {}
    for placed in ordered:
        identifier = str(placed.node["identifier"])
        numbers[str(placed.node["id"])] = seen.get(identifier, 0)
        if placed.node["status"] == "RETRY_CREATED":
            seen[identifier] = seen.get(identifier, 0) + 1
    return numbers


def run_view(
    graph: RunGraph, details: Mapping[str, NodeDetails], run_id: str
) -> RenderableType:
    nodes = _nodes(graph)
    by_id = {str(node["id"]): node for node in nodes}
    created = {sid: _parse_time(d.get("created_at")) for sid, d in details.items()}
    updated = {sid: _parse_time(d.get("updated_at")) for sid, d in details.items()}
    known = [t for t in created.values() if t is not None]
    start = min(known) if known else None

    children: dict[str, list[RunGraphNode]] = {}
    has_parent: set[str] = set()
    for edge in graph.get("edges") or []:
        source, target = str(edge["source"]), str(edge["target"])
        if source in by_id and target in by_id and target not in has_parent:
            children.setdefault(source, []).append(by_id[target])
            has_parent.add(target)
    roots = [node for node in nodes if str(node["id"]) not in has_parent]

    summary = graph.get("execution_summary") or {}
    counts = ", ".join(f"{status} {count}" for status, count in summary.items() if count)
    status = run_status(summary)
    header = Text.assemble(
        ("run ", "bold"), (run_id, "bold"), f"  graph {graph.get('graph_name', '')}  ",
        _status(status), f"\n{len(nodes)} state{'' if len(nodes) == 1 else 's'}",
        f": {counts}" if counts else "",
    )
    tree = Tree(header, guide_style="dim")
    visited: set[str] = set()

    def label(node: RunGraphNode, retry: int) -> Text:
        state_id = str(node["id"])
        text = Text.assemble(
            (str(node["identifier"]), "bold"), " ", (str(node["node_name"]), "dim"), "  ",
            _status(node["status"]),
        )
        if retry:
            text.append(f"  retry {retry}", style="yellow")
        began = _seconds(created.get(state_id), start)
        took = _seconds(updated.get(state_id), created.get(state_id))
        if began is not None:
            text.append(f"  +{format_duration(max(began, 0.0))}")
        if took is not None:
            text.append(f"  took {format_duration(max(took, 0.0))}")
        text.append(f"  {state_id}", style="dim")
        if node.get("error"):  # on a line of its own, under the state's
            text.append("\nerror: ", style="red")
            text.append(short_error(node["error"]))
        return text

    def add(branch: Tree, siblings: list[RunGraphNode]) -> None:
        retries = derive_retry_numbers(siblings, created)
        ordered = sorted(
            enumerate(siblings),
            key=lambda pair: (created.get(str(pair[1]["id"])) or _EARLIEST, pair[0]),
        )
        for _, node in ordered:
            state_id = str(node["id"])
            if state_id in visited:
                continue
            visited.add(state_id)
            add(branch.add(label(node, retries[state_id])), children.get(state_id, []))

    add(tree, roots)
    return tree


def retry_view(state_id: str, answer: ManualRetryResponse) -> RenderableType:
    return Text.assemble(
        "retried state ", (state_id, "bold"), ": new state ", (str(answer["id"]), "bold"),
        " is ", _status(answer.get("status", "CREATED")),
    )


def _describe_unites(unites: object) -> str:
    if not isinstance(unites, dict):
        return ""
    strategy = unites.get("strategy")
    return f"{unites.get('identifier', '')}" + (f" ({strategy})" if strategy else "")


def graph_view(
    answer: GraphTemplate, stored: StoredGraphTemplate | None, name: str, namespace: str
) -> RenderableType:
    status = str(answer["validation_status"])
    parts: list[RenderableType] = [
        Text.assemble(("graph ", "bold"), (name, "bold"), f"  namespace {namespace}  ",
                      _status(status)),
    ]
    errors = answer.get("validation_errors") or []
    if errors:
        parts.append(Text("validation errors:", style="bold red"))
        parts.extend(Text(f"  - {error}") for error in errors)
    table = Table(
        box=box.SIMPLE_HEAD, title=Text("nodes", style="bold"), title_justify="left",
        pad_edge=False, collapse_padding=True,
    )
    table.add_column("identifier", overflow="fold")
    table.add_column("node", overflow="fold")
    table.add_column("next nodes", overflow="fold")
    table.add_column("unites", overflow="fold")
    table.add_column("inputs", overflow="fold")
    for node in answer.get("nodes") or []:
        inputs = node.get("inputs") or {}
        table.add_row(
            Text(str(node["identifier"])),
            Text(str(node["node_name"])),
            Text(", ".join(str(n) for n in node.get("next_nodes") or []) or "-"),
            Text(_describe_unites(node.get("unites")) or "-"),
            Text("\n".join(f"{k} = {v}" for k, v in inputs.items()) or "-"),
        )
    parts.append(table)
    source = stored if stored is not None else answer
    triggers = source.get("triggers") or []
    expressions = [
        f"{t.get('type', '?')} {(t.get('value') or {}).get('expression', '')}".strip()
        for t in triggers if isinstance(t, dict)
    ]
    parts.append(Text.assemble(("triggers: ", "bold"), ", ".join(expressions) or "none"))
    policy = source.get("retry_policy")
    if isinstance(policy, dict):
        parts.append(Text.assemble(
            ("retry policy: ", "bold"),
            f"{policy.get('strategy')}, max {policy.get('max_retries')} retries, backoff "
            f"{policy.get('backoff_factor')} ms, exponent {policy.get('exponent')}"
            + (f", max delay {policy['max_delay']} ms" if policy.get("max_delay") else ""),
        ))
    store = source.get("store_config")
    if isinstance(store, dict) and (store.get("required_keys") or store.get("default_values")):
        parts.append(Text.assemble(
            ("store: ", "bold"),
            f"required {', '.join(store.get('required_keys') or []) or '-'}; defaults "
            f"{', '.join(sorted(store.get('default_values') or {})) or '-'}",
        ))
    # Names only, whatever the answer carries as values (GET says true, the list ciphertexts).
    secrets = sorted(str(secret) for secret in answer.get("secrets") or {})
    parts.append(Text.assemble(("secrets: ", "bold"), ", ".join(secrets) or "none"))
    return Group(*parts)

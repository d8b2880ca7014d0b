"""Test helpers for code built on exo_ref: one node at a time, or whole graphs in-process.

Two levels, because a node's logic and a graph's wiring fail for different reasons:

* :func:`run_node` runs one node's ``execute`` exactly as a :class:`~exo_ref.Runtime` worker does
  (the same code: input and secret validation, a plain ``def execute`` in a worker thread, the
  output normalisation) and hands back what the runtime would report. No state manager, no
  network, no clock: a unit test of the node.
* :class:`ExoEnv` starts the in-process fake state manager (:mod:`fake_state_manager`) on an
  auto-advancing :class:`~exo_ref.ManualClock` and runtimes wired to it, so a test only says what
  to run. Retry delays, ``ReQueueAfterSignal`` delays and poll intervals cost no real time, and a
  run that cannot finish fails at once with the run's states and what blocks each of them,
  instead of spinning until a timeout. The ``exo_env`` pytest fixture (exo_ref's pytest plugin,
  active once exo-ref is installed) gives one per test.

Assertion helpers (:func:`assert_run_succeeded`, :func:`assert_run_failed`,
:func:`assert_outputs`) print the run's states when they fail, because "expected SUCCESS, got
FAILED" alone says nothing about which state failed and why.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Self, TypedDict, Unpack, cast

import anyio
import anyio.abc
import httpx

from ._clock import Clock, ManualClock, SystemClock, hold_time
from ._errors import ExoRefError
from ._models import CronTrigger, GraphNodeModel, RetryPolicyModel, StoreConfigModel, UnitesModel
from ._node import BaseNode
from ._node_signals import PruneSignal
from ._poller import Backlog
from ._runtime import Runtime
from ._runtime_client import ReportOutcome
from ._state_manager import StateManager
from ._statuses import ERRORED_STATES, UNFINISHED_STATES
from ._validation import validate_nodes
from ._wire import ClaimedState, GraphTemplate, RunSummary
from ._workers import WorkerPool, _Failed, sendable_prune_data

if TYPE_CHECKING:
    from fake_state_manager import FakeStateManager

__all__ = [
    "DEFAULT_NAMESPACE",
    "ExoEnv",
    "NodeContractError",
    "RunResult",
    "RunStuckError",
    "assert_outputs",
    "assert_run_failed",
    "assert_run_succeeded",
    "graph_node",
    "run_node",
]

#: The namespace :class:`ExoEnv` and :func:`graph_node` use unless told otherwise.
DEFAULT_NAMESPACE = "exo-test"

# Runtime arguments the environment wires itself.
_WIRED = ("state_manager_uri", "key", "transport", "clock")
# Poll spacing and shutdown grace for runtimes on a real clock: the Runtime defaults (1 s, 30 s)
# are right in production and make a test wait for nothing (on a ManualClock they cost nothing).
_REAL_CLOCK_POLL_INTERVAL = 0.05
_REAL_CLOCK_GRACE_PERIOD = 5.0
_DETAIL_WIDTH = 120

# ASGI as httpx.ASGITransport types it (exo_ref does not depend on Starlette's types).
_Message = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_App = Callable[[_Message, _Receive, _Send], Awaitable[None]]


# --- run_node ------------------------------------------------------------------------------------


class NodeContractError(ExoRefError, ValueError):
    """The runtime would report this state errored although ``execute`` raised nothing of its own.

    Raised by :func:`run_node` for invalid inputs or secrets (they never reach ``execute``) and
    for a return value that is not ``Outputs``, a list of ``Outputs`` or ``None``. The message is
    the errored text the runtime would send (contract §2.9).
    """


class _SecretsOnly:
    """The one state-manager call a worker makes before ``execute``: fetching secrets."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        self._secrets = dict(secrets)

    async def secrets(self, state_id: str) -> dict[str, str]:
        return dict(self._secrets)

    # run_node never reports: the outcome goes back to the caller instead.
    async def report_executed(self, state_id: str, outputs: list[dict[str, Any]]) -> ReportOutcome:
        raise AssertionError("run_node does not report")

    async def report_errored(self, state_id: str, error: str) -> ReportOutcome:
        raise AssertionError("run_node does not report")

    async def report_prune(self, state_id: str, data: dict[str, Any]) -> ReportOutcome:
        raise AssertionError("run_node does not report")

    async def report_re_enqueue_after(self, state_id: str, delay_ms: int) -> ReportOutcome:
        raise AssertionError("run_node does not report")


async def run_node(
    node: type[BaseNode],
    inputs: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    *,
    clock: Clock | None = None,
) -> list[dict[str, Any]]:
    """Run ``node``'s ``execute`` once, as a runtime worker would, and return its outputs.

    The same code as the runtime's workers, so what passes here passes there: the class is
    checked as ``Runtime(...)`` checks it, ``inputs`` and ``secrets`` are validated into
    ``node.Inputs`` / ``node.Secrets`` (values must be strings, as on the wire), a plain
    ``def execute`` runs in a worker thread, and the result is normalised to what the runtime
    reports (contract §8.6 step 5).

    Args:
        node: the node class (not an instance).
        inputs: the state's inputs.
        secrets: the graph's secrets; fetched only if ``node.Secrets`` declares fields, as the
            runtime does.
        clock: held while a sync ``execute`` runs (pass a test's ManualClock so that it does not
            jump meanwhile); default the real clock.

    Returns:
        The outputs as JSON-ready dicts, one per output: ``[]`` for ``None``, one item for a
        single ``Outputs``, one per item for a list (fan-out).

    Raises:
        PruneSignal, ReQueueAfterSignal: raised by ``execute``, as raised.
        Exception: anything else ``execute`` raised (``SystemExit`` too), as raised.
        NodeContractError: invalid inputs or secrets, or an ``execute`` result the runtime would
            refuse (a ``PruneSignal`` whose data is not JSON included); the message is the
            errored text the runtime would report.
        NodeValidationError: the class itself cannot be served (as from ``Runtime(...)``).
    """
    (node_cls,) = validate_nodes([node])
    pool = WorkerPool(
        client=_SecretsOnly(secrets or {}),
        nodes=[node_cls],
        workers=1,
        backlog=Backlog(batch_size=1, workers=1),
        runtime_label="exo_ref.testing.run_node",
        clock=clock if clock is not None else SystemClock(),
    )
    state = ClaimedState(
        state_id="run-node",
        node_name=node_cls.__name__,
        identifier=node_cls.__name__,
        inputs=dict(inputs or {}),
    )
    try:
        try:
            return await pool._execute(state)
        except PruneSignal as signal:
            sendable_prune_data(node_cls.__name__, signal)  # the runtime refuses it otherwise
            raise
    except _Failed as failure:
        # The worker wraps what execute raised so that it can mask secrets in the report; a
        # unit test wants the node's own exception, traceback included.
        raised = getattr(failure, "error", None)
        if raised is not None:
            raise raised from None
        raise NodeContractError(str(failure)) from None


# --- graphs ---------------------------------------------------------------------------------------


def graph_node(
    identifier: str,
    node: type[BaseNode] | str,
    *,
    inputs: Mapping[str, Any] | None = None,
    next_nodes: Sequence[str] | None = None,
    unites: str | UnitesModel | None = None,
    namespace: str = DEFAULT_NAMESPACE,
) -> GraphNodeModel:
    """A :class:`~exo_ref.GraphNodeModel` with the test namespace filled in.

    ``node`` may be the node class (its name is used) and ``unites`` an identifier (strategy
    ``ALL_SUCCESS``), which keeps a graph in a test short.
    """
    return GraphNodeModel(
        node_name=node if isinstance(node, str) else node.__name__,
        namespace=namespace,
        identifier=identifier,
        inputs=dict(inputs or {}),
        next_nodes=list(next_nodes) if next_nodes is not None else None,
        unites=UnitesModel(identifier=unites) if isinstance(unites, str) else unites,
    )


@dataclass(frozen=True)
class RunResult:
    """A snapshot of one run: its summary (contract §7.1) and its states (§3.1 fields).

    Attributes:
        run_id: the run.
        summary: the runs-list item: ``status``, the counts, ``graph_name``.
        states: every state of the run in creation order, as dicts (``id``, ``identifier``,
            ``node_name``, ``status``, ``inputs``, ``outputs``, ``error``, ``retry_count``...).
    """

    run_id: str
    summary: RunSummary
    states: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``SUCCESS``, ``FAILED`` or (not finished) ``PENDING``."""
        return self.summary["status"]

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    def states_of(self, identifier: str) -> list[dict[str, Any]]:
        """Every state of graph node ``identifier`` (fan-out copies and retries included).

        Raises:
            LookupError: the run has no state with that identifier (the message lists those
                it has), so that a typo does not read as "no outputs".
        """
        found = [s for s in self.states if s["identifier"] == identifier]
        if not found:
            known = sorted({s["identifier"] for s in self.states})
            raise LookupError(
                f"run {self.run_id} has no state with identifier {identifier!r}; "
                f"its states have identifiers {known}\n{self.describe()}"
            )
        return found

    def outputs(self, identifier: str) -> list[dict[str, Any]]:
        """The outputs of every SUCCESS state of ``identifier``, in creation order.

        One dict per state: a node that fanned out has one state (so one item) per output;
        errored attempts that were retried (``RETRY_CREATED``) have none and are left out.
        """
        return [dict(s["outputs"]) for s in self.states_of(identifier) if s["status"] == "SUCCESS"]

    def output(self, identifier: str) -> dict[str, Any]:
        """The outputs of the one SUCCESS state of ``identifier``.

        Raises:
            AssertionError: there is not exactly one (the message shows the run's states).
        """
        __tracebackhide__ = True
        found = self.outputs(identifier)
        if len(found) != 1:
            raise AssertionError(
                f"expected exactly one SUCCESS state for {identifier!r} in run {self.run_id}, "
                f"found {len(found)}\n{self.describe()}"
            )
        return found[0]

    def describe(self) -> str:
        """The summary and one line per state, for failure messages."""
        return _describe_run(self.summary, self.states)

    def __str__(self) -> str:
        return self.describe()


def _describe_run(summary: Mapping[str, Any], states: Sequence[Mapping[str, Any]]) -> str:
    """A readable account of a run: its summary line and a table of its states."""
    lines = [
        f"run {summary.get('run_id')} of graph {summary.get('graph_name')!r}: "
        f"{summary.get('status')} (states={summary.get('total_count')} "
        f"success={summary.get('success_count')} pending={summary.get('pending_count')} "
        f"errored={summary.get('errored_count')} retried={summary.get('retried_count')})"
    ]
    if not states:
        lines.append("  (no states)")
        return "\n".join(lines)
    rows = [("identifier", "node", "status", "retry", "state id", "outputs / error / data")]
    for state in states:
        rows.append(
            (
                str(state.get("identifier")),
                str(state.get("node_name")),
                str(state.get("status")),
                str(state.get("retry_count", 0)),
                str(state.get("id")),
                _detail(state),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:5], widths, strict=True)]
        lines.append("  " + "  ".join([*cells, row[5]]).rstrip())
    return "\n".join(lines)


def _detail(state: Mapping[str, Any]) -> str:
    if state.get("error"):
        text = f"error: {state['error']}"
    elif state.get("outputs"):
        text = json.dumps(state["outputs"], sort_keys=True)
    elif state.get("data"):
        text = f"data: {json.dumps(state['data'], sort_keys=True)}"
    else:
        text = ""
    text = text.replace("\n", "\\n")
    return text if len(text) <= _DETAIL_WIDTH else text[: _DETAIL_WIDTH - 3] + "..."


# --- assertions ----------------------------------------------------------------------------------


def assert_run_succeeded(run: RunResult) -> None:
    """Fail, showing every state of the run, unless it ended ``SUCCESS``."""
    __tracebackhide__ = True
    if run.status != "SUCCESS":
        raise AssertionError(f"expected run {run.run_id} to succeed\n{run.describe()}")


def assert_run_failed(run: RunResult, *, error: str | None = None) -> None:
    """Fail, showing every state of the run, unless it ended ``FAILED``.

    Args:
        error: if given, some ERRORED state's error text must contain it.
    """
    __tracebackhide__ = True
    if run.status != "FAILED":
        raise AssertionError(f"expected run {run.run_id} to fail\n{run.describe()}")
    if error is not None:
        # Only states that stayed failed: a retried attempt's error did not fail the run.
        errors = [str(s["error"]) for s in run.states if s["status"] in ERRORED_STATES]
        if not any(error in text for text in errors):
            raise AssertionError(
                f"run {run.run_id} failed, but no ERRORED state's error contains {error!r}\n"
                f"{run.describe()}"
            )


def assert_outputs(
    run: RunResult,
    identifier: str,
    expected: Iterable[Mapping[str, Any]],
    *,
    ordered: bool = False,
) -> None:
    """Fail, showing every state of the run, unless ``identifier``'s outputs are ``expected``.

    Compared as a multiset unless ``ordered``: fan-out states finish in any order, and a retried
    state comes after its siblings.
    """
    __tracebackhide__ = True
    got = run.outputs(identifier)
    wanted = [dict(item) for item in expected]
    same = got == wanted if ordered else _multiset(got) == _multiset(wanted)
    if not same:
        raise AssertionError(
            f"outputs of {identifier!r} in run {run.run_id}:\n  got      {got}\n"
            f"  expected {wanted}{'' if ordered else ' (in any order)'}\n{run.describe()}"
        )


def _multiset(items: Iterable[Mapping[str, Any]]) -> Counter[str]:
    return Counter(json.dumps(item, sort_keys=True, default=str) for item in items)


class RunStuckError(AssertionError):
    """A run cannot finish: nothing left in the environment could move it on.

    An ``AssertionError`` because it is a test failure, not a broken environment.

    Attributes:
        result: the run as it stands.
        reasons: one line per state that blocks it.
    """

    def __init__(self, message: str, *, result: RunResult, reasons: Sequence[str]) -> None:
        super().__init__(message)
        self.result = result
        self.reasons = list(reasons)


# --- the environment -----------------------------------------------------------------------------


class _EnvClock(ManualClock):
    """An auto-advancing ManualClock that counts the sleeps waiting on it.

    The environment compares the count with the sleeps its runtimes' own loops make (polls,
    backoffs): anything beyond them is test or node code waiting for virtual time, which will
    come, so the run is not stuck.
    """

    def __init__(self, start: float | None = None, *, auto_advance: bool = True) -> None:
        if start is None:
            super().__init__(auto_advance=auto_advance)
        else:
            super().__init__(start, auto_advance=auto_advance)
        self.sleeping = 0

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await super().sleep(seconds)
            return
        self.sleeping += 1
        try:
            await super().sleep(seconds)
        finally:
            self.sleeping -= 1


class _CountingClock:
    """One component's view of the shared clock: the same time, its own sleep count.

    ``hold()`` passes through (see :func:`~exo_ref.hold_time`) so that a sync node still holds
    the shared ManualClock while its thread runs.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.sleeping = 0

    def now(self) -> float:
        return self._clock.now()

    async def sleep(self, seconds: float) -> None:
        self.sleeping += 1
        try:
            await self._clock.sleep(seconds)
        finally:
            self.sleeping -= 1

    def hold(self) -> Any:
        return hold_time(self._clock)


@dataclass(eq=False)
class _Serving:
    """What the environment knows about one runtime (or, with ``runtime=None``, outsiders)."""

    label: str
    runtime: Runtime | None = None
    clock: _CountingClock | None = None
    namespace: str = ""
    nodes: frozenset[str] = frozenset()
    workers: int = 0
    #: registered: a failure from now on is the runtime's, not start_runtime's.
    started: bool = False
    #: started and not asked to stop.
    running: bool = False
    #: states it claimed and has not reported (seen by its transport's _Observer).
    claimed: set[str] = field(default_factory=set)
    #: (namespace, node) pairs it polled for (for runtimes the environment did not start).
    polled: set[tuple[str, str]] = field(default_factory=set)
    error: BaseException | None = None
    done: anyio.Event | None = None

    def serves(self, namespace: str, node: str) -> bool:
        return self.running and namespace == self.namespace and node in self.nodes


_ENQUEUE = re.compile(r"/namespace/([^/]+)/states/enqueue$")
_REPORT = re.compile(r"/state/([^/]+)/(?:executed|errored|prune|re-enqueue-after)$")


class _Observer:
    """ASGI middleware around the fake's app, noting which states a client claimed and reported.

    That is how a stuck run's QUEUED state can be pinned on a runtime (running or stopped)
    without looking inside the runtime: it works for any client of an environment's transport.
    Middleware, not a transport wrapping ``sm.transport``, because the runtime calls the app of
    an ``httpx.ASGITransport`` directly (exo_ref._calls.AsgiSender) and sends through any other
    transport with ``httpx.AsyncClient``, at about three times the CPU per state. It reads the
    messages as they pass and hands every one on as it came.
    """

    def __init__(self, app: _App, serving: _Serving) -> None:
        self._app = app
        self._serving = serving

    async def __call__(self, scope: _Message, receive: _Receive, send: _Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        report = _REPORT.search(path)
        if report is not None:
            await self._app(scope, receive, send)
            # Accepted or refused, the client is done with it: it will not report it again.
            self._serving.claimed.discard(report.group(1))
            return
        enqueue = _ENQUEUE.search(path)
        if enqueue is None:
            await self._app(scope, receive, send)
            return
        asked: list[bytes] = []
        answered: list[bytes] = []
        status = 0

        async def receive_asked() -> _Message:
            message = await receive()
            if message["type"] == "http.request":
                asked.append(message.get("body", b""))
            return message

        async def send_answered(message: _Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                answered.append(message.get("body", b""))
            await send(message)

        await self._app(scope, receive_asked, send_answered)
        self._note_poll(enqueue.group(1), b"".join(asked))
        if status == 200:
            self._note_claims(b"".join(answered))

    def _note_poll(self, namespace: str, content: bytes) -> None:
        # Only what the app read: a poll it refused unread (a wrong key, say) names no nodes,
        # and a client whose polls are refused serves none anyway.
        try:
            nodes = json.loads(content).get("nodes") or []
        except (ValueError, AttributeError):
            return
        self._serving.polled.update((namespace, str(node)) for node in nodes)

    def _note_claims(self, content: bytes) -> None:
        try:
            states = json.loads(content).get("states") or []
            self._serving.claimed.update(str(s["state_id"]) for s in states)
        except (ValueError, AttributeError, KeyError, TypeError):
            return


class _StartStatus:
    """Passes ``started()`` on, remembering it: a failure before it is start_runtime's error."""

    def __init__(self, inner: anyio.abc.TaskStatus[None], serving: _Serving) -> None:
        self._inner = inner
        self._serving = serving

    def started(self, value: object = None) -> None:
        self._serving.started = self._serving.running = True
        self._inner.started()


class _TriggerOptions(TypedDict, total=False):
    """:meth:`ExoEnv.trigger`'s keyword options, typed once so that :meth:`ExoEnv.run` passes
    on exactly what it takes (``StateManager.trigger``'s ``store`` and ``start_delay``)."""

    store: Mapping[str, str] | None
    start_delay: int


@dataclass(frozen=True)
class _Blocker:
    state: Mapping[str, Any]
    reason: str
    #: True when nothing at all could unblock it; False when only something outside the
    #: environment's clock could (a real sleep, real I/O), which the grace period allows for.
    definite: bool


@dataclass
class _Diagnosis:
    progress: str | None
    blockers: list[_Blocker]
    signature: tuple[Any, ...]
    summary: RunSummary
    states: list[dict[str, Any]]


@dataclass(eq=False)
class _Watch:
    """One waiter for one run; the clock's idle hook and the runtimes report to it."""

    run_id: str
    failed: anyio.Event = field(default_factory=anyio.Event)
    armed: anyio.Event = field(default_factory=anyio.Event)
    failure: RunStuckError | None = None
    signature: tuple[Any, ...] | None = None
    generation: int = 0

    def fail(self, error: RunStuckError) -> None:
        if self.failure is None:
            self.failure = error
            self.failed.set()


class ExoEnv:
    """The in-process fake state manager, a virtual clock and runtimes wired to both.

    Use ``async with ExoEnv() as env:`` (or the ``exo_env`` pytest fixture), start the runtimes
    that serve your nodes with :meth:`start_runtime`, upsert a graph, and :meth:`run` it::

        async with ExoEnv() as env:
            await env.start_runtime(Greet)
            await env.upsert_graph("greet", [graph_node("greet", Greet, inputs={"name": "x"})])
            run = await env.run("greet", inputs={"name": "exo"})
            assert run.output("greet") == {"greeting": "hello exo"}

    Time: by default an auto-advancing :class:`~exo_ref.ManualClock` that jumps to the next due
    moment whenever every task is waiting, shared by the fake, the runtimes and :attr:`client`,
    so retry policies, ``ReQueueAfterSignal`` delays and poll intervals take no real time. Pass
    ``clock=ManualClock()`` to move time yourself (``env.clock.advance(...)``) or
    ``clock=SystemClock()`` for real time. Virtual time is not free of cost: an idle runtime
    still polls once per ``poll_interval`` of it, so for delays of hours pass a larger
    ``poll_interval=`` to :meth:`start_runtime`.

    A run that cannot finish fails :meth:`wait_for_run` with a :class:`RunStuckError` naming
    what blocks each unfinished state (no running runtime serves its node; claimed by a runtime
    that stopped; an ``execute`` that waits on something no task will ever do), as soon as
    every task is idle with nothing to wait for, or after ``stuck_grace`` real seconds when only
    something outside the clock (a real sleep, real I/O) could still move it. This needs the
    auto-advancing ManualClock and the runtimes started here; otherwise ``timeout`` applies.

    Runtimes started with :meth:`start_runtime` are stopped gracefully when the environment
    exits; an error that ended one early is raised then (and fails any wait at once).

    Args:
        namespace: the namespace runtimes register in and :attr:`client` uses.
        clock: the shared clock (default: an auto-advancing ManualClock).
        api_key: the fake's key.
        seed: seed of the fake's retry jitter (contract §5), so retry delays repeat.
        stuck_grace: real seconds an unfinished state may wait on something outside the clock
            before the run counts as stuck.
        timeout: real seconds :meth:`wait_for_run` waits at most (a net for what the stuck
            check cannot see: a real clock, a clock you advance yourself).

    Attributes:
        sm: the :class:`~fake_state_manager.FakeStateManager` (``sm.requests``, ``sm.states``).
        clock: the shared clock.
        client: a :class:`~exo_ref.StateManager` wired to the fake.
        transport: a transport to the fake for runtimes or clients you build yourself (pass it
            as ``transport=``, with ``clock=env.clock``); their claims are tracked too. An
            ``httpx.ASGITransport``, so a runtime given it calls the fake's app directly.
        runtimes: the runtimes started with :meth:`start_runtime`, in order.
    """

    def __init__(
        self,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        clock: Clock | None = None,
        api_key: str | None = None,
        seed: int | None = 0,
        stuck_grace: float = 1.0,
        timeout: float = 60.0,
    ) -> None:
        if not (math.isfinite(stuck_grace) and stuck_grace >= 0):
            raise ValueError(f"stuck_grace must be >= 0 seconds, got {stuck_grace!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout!r}")
        self.namespace = namespace
        self.clock: Clock = clock if clock is not None else _EnvClock(auto_advance=True)
        self._api_key = api_key
        self._seed = seed
        self.stuck_grace = stuck_grace
        self.timeout = timeout
        self.runtimes: list[Runtime] = []
        self._servings: list[_Serving] = []
        self._outside = _Serving(label="(outside the environment)")
        self._watches: list[_Watch] = []
        self._stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._hooked = False
        self._client_clock = _CountingClock(self.clock)
        self._sm: FakeStateManager | None = None
        self._client: StateManager | None = None
        self._transport: httpx.ASGITransport | None = None

    def __repr__(self) -> str:
        return f"ExoEnv(namespace={self.namespace!r}, clock={self.clock!r})"

    # -- lifecycle --------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._stack is not None or self._closed:
            raise RuntimeError("an ExoEnv can be entered only once; create another one")
        # Imported here: the fake (Starlette) is needed by environments, not by run_node users.
        from fake_state_manager import DEFAULT_API_KEY, FakeStateManager

        stack = AsyncExitStack()
        self._stack = stack
        try:
            sm = FakeStateManager(
                api_key=self._api_key or DEFAULT_API_KEY, clock=self.clock, seed=self._seed
            )
            await stack.enter_async_context(sm)
            self._sm = sm
            self._transport = _observed(sm, self._outside)
            self._client = StateManager(
                self.namespace, sm.uri, sm.api_key, transport=sm.transport,
                clock=self._client_clock,
            )
            await stack.enter_async_context(self._client)
            tg = anyio.create_task_group()
            await tg.__aenter__()
            self._tg = tg
        except BaseException:
            await stack.aclose()
            raise
        if isinstance(self.clock, ManualClock) and not self._hooked:
            # Called by the clock's auto-advance each time every task is waiting: the moment
            # to ask whether the awaited runs can still finish.
            self.clock.add_wakeup_source(self._at_idle)
            self._hooked = True
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        stack, tg = self._stack, self._tg
        self._closed = True
        self._tg = None
        try:
            for serving in self._servings:
                if serving.running and serving.runtime is not None:
                    serving.runtime.stop()
            clock = self.clock
            manual = isinstance(clock, ManualClock) and not clock.auto_advance
            if manual and isinstance(clock, ManualClock):
                # A shutdown may wait out the runtimes' grace period on this clock, and nobody
                # is left to move it: let it move itself until the runtimes have stopped.
                clock.auto_advance = True
                self._poke_clock()
            try:
                if tg is not None:
                    await tg.__aexit__(None, None, None)
            finally:
                if manual and isinstance(clock, ManualClock):
                    clock.auto_advance = False
        finally:
            if stack is not None:
                await stack.aclose()
        crashed = [s for s in self._servings if s.error is not None]
        if exc_type is None and crashed:
            error = crashed[0].error
            assert error is not None
            raise error

    # -- wiring -----------------------------------------------------------------------------------

    @property
    def sm(self) -> FakeStateManager:
        if self._sm is None:
            raise RuntimeError("enter the environment first: async with ExoEnv() as env")
        return self._sm

    @property
    def client(self) -> StateManager:
        if self._client is None:
            raise RuntimeError("enter the environment first: async with ExoEnv() as env")
        return self._client

    @property
    def transport(self) -> httpx.ASGITransport:
        if self._transport is None:
            raise RuntimeError("enter the environment first: async with ExoEnv() as env")
        return self._transport

    @property
    def uri(self) -> str:
        return self.sm.uri

    @property
    def api_key(self) -> str:
        return self.sm.api_key

    def _task_group(self) -> anyio.abc.TaskGroup:
        if self._tg is None:
            raise RuntimeError(
                "this ExoEnv is not running: use it inside `async with ExoEnv() as env:` "
                "(or the exo_env fixture)"
            )
        return self._tg

    # -- runtimes ---------------------------------------------------------------------------------

    async def start_runtime(
        self,
        *nodes: type[BaseNode] | Sequence[type[BaseNode]],
        name: str | None = None,
        namespace: str | None = None,
        **options: Any,
    ) -> Runtime:
        """Start a :class:`~exo_ref.Runtime` serving ``nodes``; return once they are registered.

        ``nodes`` are node classes, or one list of them. ``options`` are other ``Runtime``
        keyword arguments (``workers=``, ``batch_size=``, ``poll_interval=``,
        ``grace_period=``...); the URI, key, transport and clock are the environment's. On a
        real clock the poll interval defaults to 0.05 s and the grace period to 5 s.

        Raises:
            TypeError: ``options`` names a setting the environment wires itself.
            NodeValidationError, ConfigurationError: as ``Runtime(...)``.
            RegistrationError: the fake refused the registration.
        """
        tg = self._task_group()
        wired = sorted(set(options) & set(_WIRED))
        if wired:
            raise TypeError(
                f"start_runtime() wires {', '.join(wired)} itself; for another clock pass "
                "ExoEnv(clock=...), for a runtime of your own use transport=env.transport"
            )
        classes = _flatten(nodes)
        if not isinstance(self.clock, ManualClock):
            options.setdefault("poll_interval", _REAL_CLOCK_POLL_INTERVAL)
            options.setdefault("grace_period", _REAL_CLOCK_GRACE_PERIOD)
        label = name if name is not None else f"exo-env-runtime-{len(self._servings) + 1}"
        ns = namespace if namespace is not None else self.namespace
        view = _CountingClock(self.clock)
        serving = _Serving(label=label, clock=view, namespace=ns, done=anyio.Event())
        runtime = Runtime(
            ns, label, classes, self.sm.uri, self.sm.api_key,
            transport=_observed(self.sm, serving), clock=view, **options,
        )
        serving.runtime = runtime
        serving.nodes = frozenset(node.__name__ for node in runtime.nodes)
        serving.workers = runtime.settings.workers
        self._servings.append(serving)
        self.runtimes.append(runtime)
        try:
            await tg.start(self._serve, serving)
        except BaseException:
            self._servings.remove(serving)
            self.runtimes.remove(runtime)
            raise
        return runtime

    async def stop_runtime(self, runtime: Runtime) -> None:
        """Stop ``runtime`` gracefully (as ``runtime.stop()``) and wait until it has stopped."""
        serving = next((s for s in self._servings if s.runtime is runtime), None)
        if serving is None:
            raise ValueError(f"{runtime!r} was not started by this environment")
        serving.running = False
        runtime.stop()
        if serving.done is not None:
            await serving.done.wait()

    async def _serve(
        self, serving: _Serving, *, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        runtime = serving.runtime
        assert runtime is not None
        status = cast(anyio.abc.TaskStatus[None], _StartStatus(task_status, serving))
        try:
            await runtime.run(task_status=status)
        except Exception as error:
            if not serving.started:
                raise  # registration failed: start_runtime raises it
            # Kept from the task group, which would cancel the test itself: raised at exit, and
            # at once from any wait.
            serving.error = error
            for watch in list(self._watches):
                watch.fail(self._stuck(watch.run_id, _crash_text(serving), []))
        finally:
            serving.running = False
            if serving.done is not None:
                serving.done.set()

    # -- graphs and runs --------------------------------------------------------------------------

    async def upsert_graph(
        self,
        graph_name: str,
        nodes: Sequence[GraphNodeModel],
        *,
        secrets: Mapping[str, str] | None = None,
        retry_policy: RetryPolicyModel | None = None,
        store_config: StoreConfigModel | None = None,
        triggers: Sequence[CronTrigger] | None = None,
    ) -> GraphTemplate:
        """Create or replace a graph and wait until it is VALID (``StateManager.upsert_graph``).

        Start the runtimes first: validation checks the nodes are registered (contract §4.4).
        """
        return await self.client.upsert_graph(
            graph_name, list(nodes), dict(secrets or {}), retry_policy=retry_policy,
            store_config=store_config, triggers=triggers,
        )

    async def trigger(
        self,
        graph_name: str,
        inputs: Mapping[str, str] | None = None,
        **options: Unpack[_TriggerOptions],
    ) -> str:
        """Start a run of ``graph_name``; return its run id (``StateManager.trigger``).

        Args:
            graph_name: a graph whose template is VALID.
            inputs: overrides for the root node's template inputs.
            **options: ``store=`` (the run's store) and ``start_delay=`` (milliseconds before
                the root state may be claimed; default 0).
        """
        response = await self.client.trigger(
            graph_name,
            dict(inputs or {}),
            dict(options.get("store") or {}),
            options.get("start_delay", 0),
        )
        return str(response["run_id"])

    async def run(
        self,
        graph_name: str,
        inputs: Mapping[str, str] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a net in real seconds, see wait_for_run
        **options: Unpack[_TriggerOptions],
    ) -> RunResult:
        """Trigger ``graph_name`` and wait until the run has finished (:meth:`wait_for_run`).

        ``options`` are :meth:`trigger`'s (``store=``, ``start_delay=``), ``timeout`` is
        :meth:`wait_for_run`'s.
        """
        __tracebackhide__ = True
        run_id = await self.trigger(graph_name, inputs, **options)
        return await self.wait_for_run(run_id, timeout=timeout)

    def result(self, run_id: str) -> RunResult:
        """The run as it stands now (finished or not).

        Raises:
            LookupError: no such run in this environment.
        """
        summary = cast(RunSummary, self.sm.run_summary(run_id))
        return RunResult(run_id=run_id, summary=summary, states=self.sm.states(run_id))

    def outputs(self, run_id: str, identifier: str) -> list[dict[str, Any]]:
        """``identifier``'s SUCCESS states' outputs in ``run_id`` (:meth:`RunResult.outputs`)."""
        return self.result(run_id).outputs(identifier)

    async def wait_for_run(
        self,
        run_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - real seconds, whatever the clock
    ) -> RunResult:
        """Wait until ``run_id`` is no longer PENDING; return it (SUCCESS or FAILED).

        Woken by the fake's changes, not by polling. Fails fast when the run cannot finish
        (see the class docs); ``timeout`` (real seconds, default the environment's) is the net
        for what that check cannot see.

        Raises:
            RunStuckError: the run cannot finish, or did not within ``timeout``; the message
                has the run's summary, its states and what blocks each unfinished one.
            LookupError: no such run.
        """
        __tracebackhide__ = True  # a failure points at the test's line
        self._task_group()
        limit = self.timeout if timeout is None else timeout
        self.sm.run_summary(run_id)  # LookupError for an unknown run, before any waiting
        watch = _Watch(run_id)
        crashed = next((s for s in self._servings if s.error is not None), None)
        if crashed is not None:
            watch.fail(self._stuck(run_id, _crash_text(crashed), []))
        self._watches.append(watch)
        finished = False
        try:
            with anyio.move_on_after(limit):
                async with anyio.create_task_group() as tg:

                    async def until_finished() -> None:
                        nonlocal finished
                        await self.sm.wait_for_run(run_id, timeout=math.inf)
                        finished = True
                        tg.cancel_scope.cancel()

                    tg.start_soon(until_finished)
                    tg.start_soon(self._grace_timer, watch)
                    self._poke_clock()
                    await watch.failed.wait()
                    tg.cancel_scope.cancel()
        finally:
            self._watches.remove(watch)
        if finished:
            return self.result(run_id)
        if watch.failure is not None:
            raise watch.failure
        diagnosis = self._diagnose(run_id)
        if diagnosis is None:
            return self.result(run_id)  # finished just as the time ran out
        why = diagnosis.progress or "nothing the environment can see would move it on"
        if isinstance(self.clock, ManualClock) and not self.clock.auto_advance:
            why += "; this ManualClock moves only when told: call env.clock.advance(seconds)"
        raise self._stuck(
            run_id,
            f"still PENDING after {limit} s of real time (ExoEnv timeout=; {why})",
            diagnosis.blockers,
            diagnosis,
        )

    # -- the stuck check --------------------------------------------------------------------------

    def _poke_clock(self) -> None:
        # Leaving the last hold wakes the clock's auto-advance loop, which then waits until every
        # task is idle and asks its wake-up sources (our _at_idle) again: so a wait that begins
        # while everything is already idle is checked too, not only after the next change.
        if isinstance(self.clock, ManualClock):
            with self.clock.hold():
                pass

    def _at_idle(self) -> float | None:
        """The clock's wake-up source: every task is waiting; can the awaited runs finish?"""
        if self._closed:
            return None
        for watch in list(self._watches):
            if watch.failure is not None:
                continue
            try:
                self._check(watch)
            except Exception as error:  # noqa: BLE001 - must not break the clock's loop
                empty = RunResult(run_id=watch.run_id, summary=cast(RunSummary, {}))
                watch.fail(RunStuckError(
                    f"run {watch.run_id}: the environment's stuck check failed: {error!r}",
                    result=empty, reasons=[],
                ))
        return None  # nothing of ours is due: the clock jumps by the others' times

    def _check(self, watch: _Watch) -> None:
        diagnosis = self._diagnose(watch.run_id)
        if diagnosis is None or diagnosis.progress is not None or not diagnosis.blockers:
            watch.signature = None
            return
        if all(blocker.definite for blocker in diagnosis.blockers):
            watch.fail(self._stuck(
                watch.run_id,
                "every task is waiting and nothing the clock could jump to would move it on",
                diagnosis.blockers,
                diagnosis,
            ))
            return
        if diagnosis.signature != watch.signature:
            watch.signature = diagnosis.signature
            watch.generation += 1
            watch.armed.set()

    async def _grace_timer(self, watch: _Watch) -> None:
        """Fail the watch when the same blocked picture has held for ``stuck_grace`` seconds."""
        while True:
            await watch.armed.wait()
            watch.armed = anyio.Event()
            generation = watch.generation
            await anyio.sleep(self.stuck_grace)  # real time: what only the outside can unblock
            if generation != watch.generation or watch.signature is None:
                continue
            if isinstance(self.clock, ManualClock) and self.clock._holds:
                continue  # a sync node is busy in a thread: progress, not stuck
            diagnosis = self._diagnose(watch.run_id)
            if (
                diagnosis is not None
                and diagnosis.progress is None
                and diagnosis.signature == watch.signature
            ):
                watch.fail(self._stuck(
                    watch.run_id,
                    f"nothing changed for {self.stuck_grace} s of real time while every task "
                    "was waiting (ExoEnv stuck_grace=)",
                    diagnosis.blockers,
                    diagnosis,
                ))
                return

    def _diagnose(self, run_id: str) -> _Diagnosis | None:
        """Why ``run_id`` is still PENDING, state by state; None once it has finished."""
        sm = self.sm
        summary = cast(RunSummary, sm.run_summary(run_id))
        if summary["status"] != "PENDING":
            return None
        states = sm.states(run_id)
        now_ms = self.clock.now() * 1000
        live = [s for s in self._servings if s.running]
        outsiders = self._outside.polled
        progress: str | None = None
        if isinstance(self.clock, _EnvClock):
            ours = self._client_clock.sleeping + sum(
                s.clock.sleeping for s in self._servings if s.clock is not None
            )
            if self.clock.sleeping > ours:
                progress = "something waits on the clock (test or node code), which will come"
        blockers: list[_Blocker] = []
        signature: list[Any] = []
        for state in states:
            status = state["status"]
            if status not in UNFINISHED_STATES:
                continue
            signature.append((state["id"], status, state.get("enqueue_after")))
            ns, node = str(state["namespace_name"]), str(state["node_name"])
            if status == "EXECUTED":
                progress = progress or "a state is being completed"
                continue
            if status == "CREATED":
                servers = [s for s in live if s.serves(ns, node)]
                served_outside = (ns, node) in outsiders
                if not servers and not served_outside:
                    blockers.append(_Blocker(state, self._unserved(ns, node, live), True))
                elif float(state.get("enqueue_after") or 0) > now_ms:
                    progress = progress or "a state waits for its enqueue_after time"
                elif served_outside or any(len(s.claimed) < s.workers for s in servers):
                    progress = progress or "a runnable state will be claimed at the next poll"
                else:
                    names = ", ".join(repr(s.label) for s in servers)
                    blockers.append(_Blocker(
                        state,
                        f"runnable, but every worker of runtime {names} is busy with a state "
                        "that has not finished (see the QUEUED states)",
                        False,
                    ))
                continue
            # QUEUED: claimed by someone.
            holder = next((s for s in self._servings if state["id"] in s.claimed), None)
            if holder is None and state["id"] in self._outside.claimed:
                blockers.append(_Blocker(
                    state, "claimed by a runtime outside the environment, not reported", False
                ))
            elif holder is None:
                blockers.append(_Blocker(
                    state,
                    "claimed, but no runtime of the environment holds it (its report was "
                    "refused or lost; see the runtime's log): a state manager has no lease, "
                    "so it stays QUEUED (contract §3.2)",
                    True,
                ))
            elif holder.running:
                blockers.append(_Blocker(
                    state,
                    f"claimed by runtime {holder.label!r}, and {node}.execute() has not "
                    "returned: it waits on something no task will do and the clock cannot "
                    "bring (an event or lock never released, real I/O, a real sleep), or for "
                    "a free worker",
                    False,
                ))
            else:
                blockers.append(_Blocker(
                    state,
                    f"claimed by runtime {holder.label!r}, which stopped without reporting it: "
                    "a state manager has no lease, so it stays QUEUED (contract §3.2)",
                    True,
                ))
        for serving in self._servings:
            signature.append((serving.label, serving.running, tuple(sorted(serving.claimed))))
        return _Diagnosis(progress, blockers, tuple(signature), summary, states)

    def _unserved(self, namespace: str, node: str, live: Sequence[_Serving]) -> str:
        served = sorted({n for s in live if s.namespace == namespace for n in s.nodes})
        stopped = [
            s.label for s in self._servings
            if not s.running and s.namespace == namespace and node in s.nodes
        ]
        text = f"no running runtime serves node {node!r} in namespace {namespace!r}"
        if stopped:
            text += f" (runtime {', '.join(map(repr, stopped))} served it and has stopped)"
        elif served:
            text += f" (running runtimes serve {served})"
        return text + f"; start one with `await env.start_runtime({node})`"

    def _unites_notes(self, diagnosis: _Diagnosis) -> list[str]:
        """Unite nodes not created yet: they wait for the unfinished states above."""
        states = diagnosis.states
        if not states:
            return []
        namespace = str(states[0]["namespace_name"])
        try:
            template = self.sm.engine.get_graph(namespace, diagnosis.summary["graph_name"])
        except Exception:  # noqa: BLE001 - only for the message; the template may be gone
            return []
        present = {s["identifier"] for s in states}
        notes = []
        for node in template.get("nodes") or []:
            unites = node.get("unites")
            if not unites or node.get("identifier") in present:
                continue
            target = unites.get("identifier")
            if target not in present:
                continue
            strategy = unites.get("strategy") or "ALL_SUCCESS"
            notes.append(
                f"{node['identifier']!r} (unites {target!r}, {strategy}) is created only once "
                f"every state descending from {target!r} has finished"
                + (" successfully" if strategy == "ALL_SUCCESS" else "")
                + ": it waits on the states above"
            )
        return notes

    def _stuck(
        self,
        run_id: str,
        headline: str,
        blockers: Sequence[_Blocker],
        diagnosis: _Diagnosis | None = None,
    ) -> RunStuckError:
        if diagnosis is None:
            result = self.result(run_id)
        else:
            result = RunResult(run_id=run_id, summary=diagnosis.summary, states=diagnosis.states)
        reasons = _grouped(blockers)
        lines = [f"run {run_id} cannot finish: {headline}"]
        if reasons:
            lines.append("what blocks it:")
            lines.extend(f"  - {reason}" for reason in reasons)
        if diagnosis is not None:
            notes = self._unites_notes(diagnosis)
            lines.extend(f"  note: {note}" for note in notes)
        lines.append(result.describe())
        return RunStuckError("\n".join(lines), result=result, reasons=reasons)


def _observed(sm: FakeStateManager, serving: _Serving) -> httpx.ASGITransport:
    """``sm.transport`` with the app seen through an :class:`_Observer` for ``serving``.

    An ``httpx.ASGITransport`` itself (not a subclass), so that a runtime given it calls the
    app directly; its other settings are the fake's transport's.
    """
    inner = sm.transport
    return httpx.ASGITransport(
        app=_Observer(sm.app, serving),
        raise_app_exceptions=inner.raise_app_exceptions,
        root_path=inner.root_path,
        client=inner.client,
    )


def _crash_text(serving: _Serving) -> str:
    error = serving.error
    return f"runtime {serving.label!r} stopped with an error: {type(error).__name__}: {error}"


def _grouped(blockers: Sequence[_Blocker]) -> list[str]:
    """One line per (node, status, reason): a fan-out of 100 blocked states is one line."""
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for b in blockers:
        key = (str(b.state["identifier"]), str(b.state["node_name"]), str(b.state["status"]),
               b.reason)
        groups.setdefault(key, []).append(str(b.state["id"]))
    lines = []
    for (identifier, node, status, reason), ids in groups.items():
        if len(ids) == 1:
            which = ids[0]
        else:
            shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
            which = f"{len(ids)} states ({shown})"
        lines.append(f"{identifier} [{node}] {status}, {which}: {reason}")
    return lines


def _flatten(nodes: Sequence[type[BaseNode] | Sequence[type[BaseNode]]]) -> list[type[BaseNode]]:
    flat: list[type[BaseNode]] = []
    for item in nodes:
        if isinstance(item, list | tuple):
            flat.extend(item)
        else:
            flat.append(cast(type[BaseNode], item))
    return flat

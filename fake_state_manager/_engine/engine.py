"""The fake state manager's engine: one synchronous method per endpoint (contract §2).

The engine owns a :class:`~fake_state_manager._store.store.Store` and applies the contract's state
machine to it: claims (§3.3), executed + next-state creation (§3.4, §3.5), errored + retries (§5),
signals and manual retry (§6), triggers (§4.6, §4.7) and the read endpoints (§7).

Conventions shared by every method:

- Arguments are already validated: the HTTP layer validates each request body once with its
  pydantic request model and passes the fields as keyword arguments (plain values, and the
  graph models of :mod:`fake_state_manager._graph.models` for an upsert).
- Return values are JSON-ready ``dict``s shaped exactly like the contract's response bodies, so a
  route can hand them to ``JSONResponse`` unchanged.
- Every client mistake raises :class:`~fake_state_manager._errors.ApiError` (status + ``detail``);
  nothing else escapes for bad input.
- Time comes from the injected clock (``clock.now()`` seconds); ``enqueue_after`` values are
  ``epoch_ms(now)`` milliseconds (§1.1). Datetimes are rendered as ISO-8601 **UTC without an
  offset** (upstream uses naive local time; see docs/fidelity.md).
- Work upstream does in a background task after the response (graph verification §4.4, next-state
  creation §3.4) is done synchronously right after the response body is built. A client therefore
  still sees ``PENDING`` / ``EXECUTED`` in the response, but a request made right after may already
  see ``VALID`` / ``SUCCESS``: a legal interleaving of upstream's behaviour, and deterministic.
- Mutating methods hold one ``threading.RLock`` so that the engine can be shared by an event loop
  and a uvicorn thread: claiming is atomic by construction.
- With a database (``Engine(storage=...)``, ``--db``), the documents of §3.1 that a call changed
  are written in one SQLite transaction when the outermost locked call ends, before its answer
  goes back to the route (see :mod:`fake_state_manager._store.sqlite`). A failed write answers
  503 after the store is reloaded from the file, so memory never runs ahead of the disk.
- An unknown *or malformed* state id is 404 ``State not found`` (upstream: 500, §2.8-§2.13).
- Two opt-in additions run as housekeeping at the start of every outermost locked call (and so
  before every request, and when the clock-driven loop of ``FakeStateManager`` wakes for
  :meth:`Engine.next_due_time`); without them that step is one attribute test:
  ``queued_timeout`` (a state QUEUED longer than that without a report is errored through the
  normal §5 path, so the graph's retry policy applies) and ``retain_runs`` / ``retain_hours``
  (the earliest-finished runs are dropped, :mod:`.retention`).

The engine is one class, reads included; the rules it applies live beside it in this package:
:mod:`.nodes` (§2.1-§2.2), :mod:`.templates` (template documents, §4.6 trigger), :mod:`.cron`
(the cron schedule, §4.7), :mod:`.reports` (executed / errored / prune / re-enqueue / manual
retry: §3.4, §5, §6), :mod:`.next_states` (§3.5, unites), :mod:`.retry` (§5 delays) and
:mod:`.views` (§7). Below it: :mod:`fake_state_manager._graph` (structural checks §4.3,
verification §4.4, placeholders §4.2, cron arithmetic) and :mod:`fake_state_manager._store`
(documents and indexes, §3.1).
"""

from __future__ import annotations

import functools
import logging
import math
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from exo_ref import Clock, RetryPolicyModel, SystemClock
from fake_state_manager._engine import nodes as _nodes
from fake_state_manager._engine import reports
from fake_state_manager._engine.cron import CronSchedule, expressions
from fake_state_manager._engine.retention import RunRetention
from fake_state_manager._engine.templates import (
    build_template,
    list_item,
    start_run,
    template_response,
)
from fake_state_manager._engine.views import (
    OBJECT_ID,
    list_runs,
    node_details,
    run_graph,
    run_summary,
)
from fake_state_manager._errors import ApiError
from fake_state_manager._graph.models import NodeTemplate, StoreConfig, Trigger
from fake_state_manager._graph.verification import verify_graph
from fake_state_manager._json import JsonDict
from fake_state_manager._store.documents import ERRORED, CronDoc, State, epoch_ms, iso_utc
from fake_state_manager._store.secrets import SecretBox
from fake_state_manager._store.sqlite import SqliteStorage, StorageError, StorageWriteError
from fake_state_manager._store.store import Store, check_invariants

__all__ = ["TRIGGER_RETENTION_HOURS", "Engine", "queued_timeout_error"]


logger = logging.getLogger("fake_state_manager")

#: §1.5 ``TRIGGER_RETENTION_HOURS`` default: how long finished cron docs are kept.
TRIGGER_RETENTION_HOURS = 720.0


F = TypeVar("F", bound=Callable[..., Any])


def locked(method: F) -> F:
    """Run ``method`` under the engine's lock (one writer at a time, claims atomic).

    With a database, the outermost locked call (a route's one engine call; nested calls such
    as cron firing a trigger join it) saves what it changed before it returns, even when it
    raises: memory and file hold the same documents after every call.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            if self.storage is None:
                if self._housekeeping:
                    self._tidy()
                return method(self, *args, **kwargs)
            if self._depth == 0 and self._stale is not None:
                self._reload()
            self._depth += 1
            try:
                if self._depth == 1 and self._housekeeping:
                    self._tidy()
                return method(self, *args, **kwargs)
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._save()

    return cast(F, wrapper)


class Engine:
    """The state manager's behaviour over an in-memory store.

    Args:
        clock: where time comes from (default :class:`~exo_ref.SystemClock`).
        rng: the random source for retry jitter (§5); default ``random.Random()``. Seed it for
            exact delays in tests.
        store: an existing store to work on (default: a new empty one).
        trigger_retention_hours: how long TRIGGERED/FAILED cron docs are kept (§4.7).
        secret_box: encrypts stored graph secrets (§4.5); default: one with a random key, or
            the database's with ``storage``.
        storage: an open database: the store is loaded from it (not with ``store``) and every
            call's changes are saved to it before the call returns (an addition, ``--db``).
        queued_timeout: seconds a state may stay QUEUED without a report; after that it is
            errored as if its runtime had reported :func:`queued_timeout_error` (an addition,
            ``--queued-timeout``; ``None``, the default, is upstream's behaviour: no lease).
        retain_runs: keep at most this many finished runs, dropping the earliest-finished
            (an addition, ``--retain-runs``; ``None``: keep all).
        retain_hours: drop a run this many hours after it finished (an addition,
            ``--retain-hours``; ``None``: keep all).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        store: Store | None = None,
        trigger_retention_hours: float = TRIGGER_RETENTION_HOURS,
        secret_box: SecretBox | None = None,
        storage: SqliteStorage | None = None,
        queued_timeout: float | None = None,
        retain_runs: int | None = None,
        retain_hours: float | None = None,
    ) -> None:
        if queued_timeout is not None and not (
            math.isfinite(queued_timeout) and epoch_ms(queued_timeout) >= 1
        ):
            raise ValueError(f"queued_timeout must be at least 0.001 s, got {queued_timeout!r}")
        if retain_runs is not None and (isinstance(retain_runs, bool) or retain_runs < 0):
            raise ValueError(f"retain_runs must be an int >= 0, got {retain_runs!r}")
        if retain_hours is not None and not (math.isfinite(retain_hours) and retain_hours > 0):
            raise ValueError(f"retain_hours must be > 0, got {retain_hours!r}")
        self.queued_timeout = queued_timeout
        self.retain_runs = retain_runs
        self.retain_hours = retain_hours
        self._housekeeping = (
            queued_timeout is not None or retain_runs is not None or retain_hours is not None
        )
        self.retention: RunRetention | None = None
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.rng = rng if rng is not None else random.Random()
        self.storage = storage
        self._depth = 0  # nesting of locked calls (saved when the outermost one ends)
        self._stale: str | None = None  # why memory is ahead of the file (a failed reload)
        if storage is not None:
            if store is not None:
                raise ValueError("give Engine either store= or storage=, not both")
            store = storage.load(epoch_ms(self.clock.now()))  # StorageError for a bad file
            secret_box = secret_box if secret_box is not None else storage.secret_box
        self.lock = threading.RLock()
        self.trigger_retention_hours = trigger_retention_hours
        self.secret_box = secret_box if secret_box is not None else SecretBox()
        self._attach(store if store is not None else Store())

    def _attach(self, store: Store) -> None:
        """Work on ``store`` (new, given or loaded): index its cron docs, leases and runs."""
        self.store = store
        self.cron = CronSchedule(store)  # indexes the cron docs of a loaded store
        if self.queued_timeout is not None:
            store.enable_leases(epoch_ms(self.queued_timeout), self._now()[1])
        if self.retain_runs is not None or self.retain_hours is not None:
            self.retention = RunRetention(
                store,
                max_runs=self.retain_runs,
                max_age_s=None if self.retain_hours is None else self.retain_hours * 3600.0,
            )

    def _now(self) -> tuple[float, int]:
        now = self.clock.now()
        return now, epoch_ms(now)

    # -- persistence (``storage``; contract §3.1 documents) --------------------------------------

    def _save(self) -> None:
        """Commit this call's changes; on failure put memory back to the file and answer 503."""
        assert self.storage is not None
        try:
            self.storage.commit(self.store)
        except StorageWriteError as exc:
            self._stale = f"a write failed ({exc})"
            self._reload()
            raise ApiError(
                503,
                f"The fake state manager could not save this request to its database ({exc});"
                " nothing was changed. Free disk space or make the database writable, then"
                " retry.",
            ) from None

    def _reload(self) -> None:
        """Replace the store with the file's documents (after a failed write)."""
        assert self.storage is not None
        if self.storage.closed:
            raise ApiError(
                503,
                f"The fake state manager's database {self.storage.path} is closed: nothing more"
                " can be saved, and this process may hold changes the file does not. Open the"
                " file again with a new FakeStateManager(db=...).",
            )
        try:
            store = self.storage.load(epoch_ms(self.clock.now()))
        except StorageError as exc:
            raise ApiError(
                503,
                f"The fake state manager's database cannot be read back after {self._stale}:"
                f" {exc}. Restart it once the database is usable.",
            ) from None
        self._attach(store)
        self._stale = None

    # -- housekeeping (``queued_timeout``, ``retain_runs`` / ``retain_hours``) -------------------

    def _tidy(self) -> None:
        """Expire ended leases, then drop finished runs beyond the bounds (see the module doc)."""
        now = self.clock.now()
        if self.queued_timeout is not None:
            self._expire_leases(now)
        if self.retention is not None:
            self.retention.sweep(now)

    def _expire_leases(self, now: float) -> None:
        timeout = self.queued_timeout
        assert timeout is not None
        for state in self.store.pop_expired_leases(epoch_ms(now)):
            error = queued_timeout_error(timeout)
            try:
                answer = reports.errored(
                    self.store, state, state.namespace_name, error, now, self.rng
                )
                outcome = "a retry was created" if answer["retry_created"] else "no retry left"
            except ApiError as exc:  # no template to read a retry policy from: just ERRORED
                self.store.set_status(state, ERRORED)
                state.error = error
                state.updated_at = now
                outcome = f"no retry ({exc.detail})"
            logger.warning(
                "state %s (node %s, graph %s, run %s) was QUEUED for more than %s s without a"
                " report: treated as errored, %s (--queued-timeout)",
                state.id,
                state.node_name,
                state.graph_name,
                state.run_id,
                f"{timeout:g}",
                outcome,
            )
            self._touched(state.run_id, now)

    def close(self) -> None:
        """Close the database, if any (its file is released; later writes answer 503)."""
        with self.lock:
            if self.storage is not None:
                self.storage.close()

    def _registered_node(self, node_name: str, namespace: str) -> object | None:
        return self.store.nodes.get(namespace, {}).get(node_name)

    def _report(self, state: State, apply: Callable[[State, float], JsonDict]) -> JsonDict:
        """Apply one report or retry to ``state`` at the clock's now (one reading for the change
        and for retention, which counts a run's age from its last change)."""
        now = self.clock.now()
        answer = apply(state, now)
        self._touched(state.run_id, now)
        return answer

    def _touched(self, run_id: str, now: float) -> None:
        if self.retention is not None:
            self.retention.touch(run_id, now)

    def _state(self, state_id: str) -> State:
        # §2.8-§2.13: upstream answers 500 for a malformed id; the fake answers 404 (fidelity.md).
        state = self.store.states.get(state_id.lower()) if OBJECT_ID.fullmatch(state_id) else None
        if state is None:
            raise ApiError(404, "State not found")
        return state

    # -- nodes (§2.1, §2.2, §2.17) -------------------------------------------------------------

    @locked
    def register_nodes(
        self, namespace: str, *, runtime_name: str, nodes: Sequence[Mapping[str, Any]], **_: Any
    ) -> JsonDict:
        """PUT ``/nodes/`` (§2.1). ``nodes[]`` items have name, inputs_schema, outputs_schema,
        secrets; other keys (``namespace``, ``runtime_namespace``) are ignored.

        Returns ``{"runtime_name", "registered_nodes": [...]}`` in request order.
        """
        return _nodes.register_nodes(self.store, namespace, runtime_name, nodes, self.clock.now())

    # -- graphs (§2.3-§2.7, §4) ----------------------------------------------------------------

    @locked
    def upsert_graph(
        self,
        namespace: str,
        graph_name: str,
        *,
        nodes: Sequence[NodeTemplate],
        secrets: Mapping[str, str],
        retry_policy: RetryPolicyModel | None = None,
        store_config: StoreConfig | None = None,
        triggers: Sequence[Trigger] = (),
    ) -> JsonDict:
        """PUT ``/graph/{name}`` (§2.3): answer for status **201**.

        The graph arrives as the validated models of :mod:`fake_state_manager._graph.models`
        (the HTTP layer validated the body once); they are checked as they are and stored as
        JSON-ready documents. Structural errors (§4.3) raise
        ``ApiError(400, "Error validating graph template: ...")`` and store nothing (an update
        leaves the old version in place). The response says ``PENDING``; verification (§4.4)
        then runs synchronously before this method returns, so a GET right after may say VALID.
        """
        now = self.clock.now()
        key = (namespace, graph_name)
        old = self.store.graphs.get(key)
        template = build_template(
            self.store,
            old,
            namespace,
            graph_name,
            nodes=nodes,
            secrets={name: self.secret_box.encrypt(value) for name, value in secrets.items()},
            retry_policy=retry_policy if retry_policy is not None else RetryPolicyModel(),
            store_config=store_config if store_config is not None else StoreConfig(),
            triggers=triggers,
            now=now,
        )
        self.store.put_graph(template)
        self.store.note_graph(namespace, graph_name)  # validation fields change below, too
        response = template_response(template, status="PENDING", errors=[])
        # Upstream verifies in a background task after the response (§4.4); done right here.
        if old is not None:
            self.cron.drop_pending(namespace, graph_name, expressions(old.triggers))
        errors = verify_graph(nodes, list(template.secrets), self._registered_node)
        if not errors:
            try:
                self.cron.schedule(template.triggers, graph_name, namespace, now)
            except ValueError as exc:  # §4.4: an unexpected failure makes the template INVALID
                errors = [f"Validation failed due to unexpected error: {exc}"]
        template.validation_status = "INVALID" if errors else "VALID"
        template.validation_errors = errors
        return response

    @locked
    def trigger(
        self,
        namespace: str,
        graph_name: str,
        *,
        inputs: Mapping[str, str] | None = None,
        store: Mapping[str, str] | None = None,
        start_delay: int = 0,
    ) -> JsonDict:
        """POST ``/graph/{name}/trigger`` (§2.6, §4.6): ``{"status": "CREATED", "run_id"}``."""
        template = self.store.graphs.get((namespace, graph_name))
        if template is None:
            raise ApiError(
                404, f"Graph template not found for namespace {namespace} and graph {graph_name}"
            )
        if template.validation_status != "VALID":
            raise ApiError(400, "Graph template is not valid")
        return start_run(
            self.store, template, inputs or {}, store or {}, start_delay, self.clock.now()
        )

    @locked
    def fire_due_triggers(self) -> int:
        """Fire every cron trigger whose time has come (§4.7), catching up missed occurrences.

        Each due PENDING doc triggers its graph with an empty body; it becomes TRIGGERED, or
        FAILED when the trigger answers an error (e.g. required store keys). Returns the number
        of trigger attempts made (see :meth:`CronSchedule.fire_due`).
        """

        def fire(doc: CronDoc) -> bool:
            try:
                self.trigger(doc.namespace, doc.graph_name)  # an empty body (§4.7)
            except ApiError:
                return False
            return True

        return self.cron.fire_due(self.clock.now(), fire, self.trigger_retention_hours * 3600.0)

    def schedule_mark(self) -> tuple[int, int]:
        """Changes whenever :meth:`next_due_time` may have become earlier: a delayed state, a
        lease or a cron doc was scheduled, or the store was replaced. Between two equal marks the
        earliest wake-up can only have moved later, so a waiter need not look again (the
        served fake's cron loop asks after each request; most requests schedule nothing)."""
        store = self.store
        return id(store), store.schedule_pushes

    def next_due_time(self) -> float | None:
        """Earliest *future* moment (epoch seconds) a delayed state becomes claimable, a cron
        trigger is due or (with ``queued_timeout``) a claimed state's lease ends; ``None`` if
        nothing is waiting. Register with
        ``ManualClock.add_wakeup_source(engine.next_due_time)``.

        States already due are promoted first, so a state time is always in the future; a cron
        time can be ``<= now`` only while :meth:`fire_due_triggers` has not run since it came due.
        """
        with self.lock:
            candidates: list[float] = []
            self.store.promote_due(self._now()[1])
            due_ms = self.store.next_due_ms()
            if due_ms is not None:
                candidates.append(due_ms / 1000)
            cron_due = self.cron.next_due()
            if cron_due is not None:
                candidates.append(cron_due)
            if self.queued_timeout is not None:
                lease_ms = self.store.next_lease_ms()
                if lease_ms is not None:
                    candidates.append(lease_ms / 1000)
            # The delayed heap keeps already-due states until a claim moves them; a past time
            # would make FakeStateManager's cron loop spin on sleep(0) and freeze an
            # auto-advancing ManualClock. Only future moments are wake-up times.
            now = self.clock.now()
            candidates = [c for c in candidates if c > now]
            return min(candidates) if candidates else None

    # -- states (§2.7-§2.13, §3, §5, §6) ---------------------------------------------------------

    @locked
    def enqueue(self, namespace: str, *, nodes: Sequence[str], batch_size: int) -> JsonDict:
        """POST ``/states/enqueue`` (§2.7, §3.3): claim up to ``batch_size`` runnable states.

        Cost is O(batch_size + due delayed states), independent of how many states are stored.
        """
        _, now_ms = self._now()
        claimed = self.store.claim(namespace, nodes, batch_size, now_ms)
        return {
            "count": len(claimed),
            "namespace": namespace,
            "status": "QUEUED",
            "states": [
                {
                    "state_id": state.id,
                    "node_name": state.node_name,
                    "identifier": state.identifier,
                    "inputs": dict(state.inputs),
                    "created_at": iso_utc(state.created_at),
                }
                for state in claimed
            ],
        }

    @locked
    def executed(
        self, namespace: str, state_id: str, *, outputs: Sequence[Mapping[str, Any]]
    ) -> JsonDict:
        """POST ``/state/{id}/executed`` (§2.8, §3.4): ``{"status": "EXECUTED"}``.

        Next-state creation (§3.5) runs synchronously right after the status change.
        Errors: 404 ``State not found``, 400 ``State is not queued``.
        """
        return self._report(
            self._state(state_id), lambda s, now: reports.executed(self.store, s, outputs, now)
        )

    @locked
    def errored(self, namespace: str, state_id: str, *, error: str) -> JsonDict:
        """POST ``/state/{id}/errored`` (§2.9, §5): ``{"status": "ERRORED", "retry_created"}``.

        Errors: 404 ``State not found``, 400 ``State is not queued or executed`` / ``State is
        already executed``, 404 ``Graph template not found`` (looked up in the path namespace).
        """
        return self._report(
            self._state(state_id),
            lambda s, now: reports.errored(self.store, s, namespace, error, now, self.rng),
        )

    @locked
    def prune(self, namespace: str, state_id: str, *, data: Mapping[str, Any]) -> JsonDict:
        """POST ``/state/{id}/prune`` (§2.10, §6.1): ``{"enqueue_after", "status": "PRUNED"}``.

        Errors: 404 ``State not found``, 400 ``State is not queued``.
        """
        return self._report(
            self._state(state_id), lambda s, now: reports.prune(self.store, s, data, now)
        )

    @locked
    def re_enqueue_after(self, namespace: str, state_id: str, *, enqueue_after: int) -> JsonDict:
        """POST ``/state/{id}/re-enqueue-after`` (§2.11, §6.2); ``enqueue_after`` is a delay in
        ms (> 0, validated by the route).
        Returns ``{"enqueue_after": now_ms + delay, "status": "CREATED"}``.
        """
        return self._report(
            self._state(state_id),
            lambda s, now: reports.re_enqueue_after(self.store, s, enqueue_after, now),
        )

    @locked
    def manual_retry(self, namespace: str, state_id: str, *, fanout_id: str) -> JsonDict:
        """POST ``/state/{id}/manual-retry`` (§2.12, §6.3): ``{"id", "status": "CREATED"}``;
        409 ``Duplicate retry state detected``."""
        state = self._state(state_id)
        if state.namespace_name != namespace:  # this lookup filters by namespace (§6.3)
            raise ApiError(404, "State not found")
        return self._report(
            state, lambda s, now: reports.manual_retry(self.store, s, fanout_id, now)
        )

    @locked
    def state_secrets(self, namespace: str, state_id: str) -> JsonDict:
        """GET ``/state/{id}/secrets`` (§2.13): ``{"secrets": {name: plaintext}}``.

        Deviation: 404 ``State not found`` / ``Graph template not found`` instead of upstream 500.
        """
        state = self._state(state_id)
        if state.namespace_name != namespace:
            raise ApiError(404, "State not found")
        template = self.store.graphs.get((namespace, state.graph_name))
        if template is None:
            raise ApiError(404, "Graph template not found")
        return {
            "secrets": {
                name: self.secret_box.decrypt(value) for name, value in template.secrets.items()
            }
        }

    # -- reads (§2.2, §2.4, §2.5, §2.17, §7): they change nothing but take the lock too, so a
    # reader never sees a half-applied transition from another thread (serve_in_thread).

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
        found = self.store.graphs_by_namespace.get(namespace, {})
        templates = [list_item(t) for t in found.values()]
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
        self.cron.check()
        if self.retention is not None:
            self.retention.check()


def queued_timeout_error(timeout: float) -> str:
    """The ``error`` of a state errored by ``queued_timeout`` (seconds)."""
    return (
        f"State was QUEUED for more than {timeout:g} s without a report (queued-timeout);"
        " treated as errored"
    )

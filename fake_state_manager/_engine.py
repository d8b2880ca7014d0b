"""The fake state manager's engine: one synchronous method per endpoint (contract §2).

The engine owns a :class:`~fake_state_manager._store.Store` and applies the contract's state
machine to it: claims (§3.3), executed + next-state creation (§3.4, §3.5), errored + retries (§5),
signals and manual retry (§6), triggers (§4.6, §4.7) and the read endpoints (§7).

Conventions shared by every method:

- Arguments are plain, already-validated values (the routes validate request bodies with the
  pydantic models of ``_schemas.py`` and pass their fields as keyword arguments, e.g.
  ``engine.trigger(ns, graph, **body.model_dump())``).
- Return values are JSON-ready ``dict``s shaped exactly like the contract's response bodies, so a
  route can hand them to ``JSONResponse`` unchanged.
- Every client mistake raises :class:`~fake_state_manager._errors.ApiError` (status + ``detail``);
  nothing else escapes for bad input.
- Time comes from the injected clock (``clock.now()`` seconds); ``enqueue_after`` values are
  ``int(now * 1000)`` milliseconds (§1.1). Datetimes are rendered as ISO-8601 **UTC without an
  offset** (upstream uses naive local time; see docs/fidelity.md).
- Work upstream does in a background task after the response (graph verification §4.4, next-state
  creation §3.4) is done synchronously right after the response body is built. A client therefore
  still sees ``PENDING`` / ``EXECUTED`` in the response, but a request made right after may already
  see ``VALID`` / ``SUCCESS``: a legal interleaving of upstream's behaviour, and deterministic.
- Mutating methods hold one ``threading.RLock`` so that the engine can be shared by an event loop
  and a uvicorn thread: claiming is atomic by construction.
- An unknown *or malformed* state id is 404 ``State not found`` (upstream: 500, §2.8-§2.13).

The engine is a thin facade; the rules live in small modules: ``_store`` (data + indexes),
``_nodes`` (§2.1-§2.2), ``_graphs`` (template documents, §4.6 trigger), ``_cron_docs`` (§4.7),
``_transitions`` (§3.4, §5, §6), ``_next_states`` (§3.5), ``_views`` (§7), ``_domain`` (the seam
onto the structural checks, verification and cron arithmetic).
"""

from __future__ import annotations

import functools
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from exo_ref._clock import Clock, SystemClock
from fake_state_manager import _domain, _nodes, _transitions
from fake_state_manager._cron_docs import CronSchedule, expressions
from fake_state_manager._errors import ApiError
from fake_state_manager._graphs import (
    DEFAULT_RETRY_POLICY,
    DEFAULT_STORE_CONFIG,
    list_item,
    normalise_node,
    plain,
    start_run,
    template_response,
)
from fake_state_manager._secrets import SecretBox
from fake_state_manager._store import (
    GraphTemplate,
    State,
    Store,
    check_invariants,
    iso_utc,
)
from fake_state_manager._views import OBJECT_ID, list_runs, node_details, run_graph, run_summary

__all__ = ["TRIGGER_RETENTION_HOURS", "Engine"]

JsonDict = dict[str, Any]
F = TypeVar("F", bound=Callable[..., Any])

#: §1.5 ``TRIGGER_RETENTION_HOURS`` default: how long finished cron docs are kept.
TRIGGER_RETENTION_HOURS = 720.0


def _locked(method: F) -> F:
    """Run ``method`` under the engine's lock (one writer at a time, claims atomic)."""

    @functools.wraps(method)
    def wrapper(self: Engine, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return cast(F, wrapper)


class Engine:
    """The state manager's behaviour over an in-memory store.

    Args:
        clock: where time comes from (default :class:`~exo_ref._clock.SystemClock`).
        rng: the random source for retry jitter (§5); default ``random.Random()``. Seed it for
            exact delays in tests.
        store: an existing store to work on (default: a new empty one).
        trigger_retention_hours: how long TRIGGERED/FAILED cron docs are kept (§4.7).
        secret_box: encrypts stored graph secrets (§4.5); default: one with a random key.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        store: Store | None = None,
        trigger_retention_hours: float = TRIGGER_RETENTION_HOURS,
        secret_box: SecretBox | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.rng = rng if rng is not None else random.Random()
        self.store = store if store is not None else Store()
        self.lock = threading.RLock()
        self.trigger_retention_hours = trigger_retention_hours
        self.secret_box = secret_box if secret_box is not None else SecretBox()
        self.cron = CronSchedule(self.store)

    def _now(self) -> tuple[float, int]:
        now = self.clock.now()
        return now, int(now * 1000)

    def _state(self, state_id: str) -> State:
        # §2.8-§2.13: upstream answers 500 for a malformed id; the fake answers 404 (fidelity.md).
        state = self.store.states.get(state_id.lower()) if OBJECT_ID.fullmatch(state_id) else None
        if state is None:
            raise ApiError(404, "State not found")
        return state

    # -- nodes (§2.1, §2.2, §2.17) -------------------------------------------------------------

    @_locked
    def register_nodes(
        self, namespace: str, *, runtime_name: str, nodes: Sequence[Mapping[str, Any]], **_: Any
    ) -> JsonDict:
        """PUT ``/nodes/`` (§2.1). ``nodes[]`` items have name, inputs_schema, outputs_schema,
        secrets; other keys (``namespace``, ``runtime_namespace``) are ignored.

        Returns ``{"runtime_name", "registered_nodes": [...]}`` in request order.
        """
        return _nodes.register_nodes(self.store, namespace, runtime_name, nodes, self.clock.now())

    @_locked
    def list_nodes(self, namespace: str) -> JsonDict:
        """GET ``/nodes/`` (§2.2): ``{"namespace", "count", "nodes": [{"_id", ...}]}``."""
        return _nodes.list_nodes(self.store, namespace)

    @_locked
    def namespaces(self) -> JsonDict:
        """GET ``/v0/namespaces`` (§2.17): sorted distinct namespaces of registered nodes."""
        return _nodes.namespaces(self.store)

    # -- graphs (§2.3-§2.7, §4) ----------------------------------------------------------------

    @_locked
    def upsert_graph(
        self,
        namespace: str,
        graph_name: str,
        *,
        nodes: Sequence[Mapping[str, Any]],
        secrets: Mapping[str, str],
        retry_policy: Mapping[str, Any] | None = None,
        store_config: Mapping[str, Any] | None = None,
        triggers: Sequence[Mapping[str, Any]] | None = None,
    ) -> JsonDict:
        """PUT ``/graph/{name}`` (§2.3): answer for status **201**.

        ``nodes`` are NodeTemplate dicts (node_name, namespace, identifier, inputs, next_nodes,
        unites as ``{"identifier", "strategy"}`` or None); ``triggers`` items are
        ``{"type": "CRON", "value": {"expression": ...}}``. Structural errors (§4.3) raise
        ``ApiError(400, "Error validating graph template: ...")`` and store nothing (an update
        leaves the old version in place). The response says ``PENDING``; verification (§4.4)
        then runs synchronously before this method returns, so a GET right after may say VALID.
        """
        now, _ = self._now()
        node_docs = [normalise_node(node) for node in nodes]
        policy = {**DEFAULT_RETRY_POLICY, **plain(retry_policy or {})}
        config = {**DEFAULT_STORE_CONFIG, **plain(store_config or {})}
        trigger_docs = plain(list(triggers or []))
        problem = _domain.structural_error(
            node_docs, secrets, config, name=graph_name, namespace=namespace
        )
        if problem is not None:
            raise ApiError(400, f"Error validating graph template: {problem}")
        key = (namespace, graph_name)
        old = self.store.graphs.get(key)
        template = GraphTemplate(
            id=old.id if old else self.store.new_id(),
            name=graph_name,
            namespace=namespace,
            nodes=node_docs,
            secrets={name: self.secret_box.encrypt(value) for name, value in secrets.items()},
            retry_policy=policy,
            store_config=config,
            triggers=trigger_docs,
            created_at=old.created_at if old else now,
            updated_at=now,
        )
        self.store.graphs[key] = template
        response = template_response(template, status="PENDING", errors=[])
        # Upstream verifies in a background task after the response (§4.4); done right here.
        if old is not None:
            self.cron.drop_pending(namespace, graph_name, expressions(old.triggers))
        errors = _domain.verify(template, self.store)
        if not errors:
            try:
                self.cron.schedule(template.triggers, graph_name, namespace, now)
            except ValueError as exc:  # §4.4: an unexpected failure makes the template INVALID
                errors = [f"Validation failed due to unexpected error: {exc}"]
        template.validation_status = "INVALID" if errors else "VALID"
        template.validation_errors = errors
        return response

    @_locked
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

    @_locked
    def list_graphs(self, namespace: str) -> JsonDict:
        """GET ``/graphs/`` (§2.5): ``{"namespace", "count", "templates": [...]}`` with ``_id``
        keys and opaque (encrypted) secret values."""
        templates = [list_item(t) for (ns, _), t in self.store.graphs.items() if ns == namespace]
        return {"namespace": namespace, "count": len(templates), "templates": templates}

    @_locked
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

    @_locked
    def fire_due_triggers(self) -> int:
        """Fire every cron trigger whose time has come (§4.7), catching up missed occurrences.

        Each due PENDING doc triggers its graph with an empty body; it becomes TRIGGERED, or
        FAILED when the trigger answers an error (e.g. required store keys). The next
        occurrence after the fired one is scheduled; occurrences already past are fired in the
        same pass (upstream's catch-up burst). Returns the number of trigger attempts made.
        """
        now, _ = self._now()
        retention = self.trigger_retention_hours * 3600.0
        fired = 0
        for doc in self.cron.pop_due(now):
            doc.trigger_status = "TRIGGERING"
            try:
                self.trigger(doc.namespace, doc.graph_name)  # an empty body (§4.7)
            except ApiError:
                self.cron.finish(doc, "FAILED", now + retention)
            else:
                self.cron.finish(doc, "TRIGGERED", now + retention)
            fired += 1
            # The next occurrence after this one; if already past it is fired in this pass.
            when = _domain.next_fire(doc.expression, doc.trigger_time)
            self.cron.add(doc.expression, doc.graph_name, doc.namespace, when)
        self.cron.expire(now)
        return fired

    def next_due_time(self) -> float | None:
        """Earliest *future* moment (epoch seconds) a delayed state becomes claimable or a cron
        trigger is due; ``None`` if nothing is waiting. Register with
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
            # (E2 unblocker) the delayed heap keeps already-due states until a claim moves them;
            # returning a past time made FakeStateManager._cron_loop spin on sleep(0), freezing an
            # auto-advancing ManualClock. Only future moments are wake-up times.
            now = self.clock.now()
            candidates = [c for c in candidates if c > now]
            return min(candidates) if candidates else None

    # -- states (§2.7-§2.13, §3, §5, §6) ---------------------------------------------------------

    @_locked
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

    @_locked
    def executed(
        self, namespace: str, state_id: str, *, outputs: Sequence[Mapping[str, Any]]
    ) -> JsonDict:
        """POST ``/state/{id}/executed`` (§2.8, §3.4): ``{"status": "EXECUTED"}``.

        Next-state creation (§3.5) runs synchronously right after the status change.
        Errors: 404 ``State not found``, 400 ``State is not queued``.
        """
        return _transitions.executed(self.store, self._state(state_id), outputs, self.clock.now())

    @_locked
    def errored(self, namespace: str, state_id: str, *, error: str) -> JsonDict:
        """POST ``/state/{id}/errored`` (§2.9, §5): ``{"status": "ERRORED", "retry_created"}``.

        Errors: 404 ``State not found``, 400 ``State is not queued or executed`` / ``State is
        already executed``, 404 ``Graph template not found`` (looked up in the path namespace).
        """
        state = self._state(state_id)
        return _transitions.errored(self.store, state, namespace, error, self.clock.now(), self.rng)

    @_locked
    def prune(self, namespace: str, state_id: str, *, data: Mapping[str, Any]) -> JsonDict:
        """POST ``/state/{id}/prune`` (§2.10, §6.1): ``{"enqueue_after", "status": "PRUNED"}``.

        Errors: 404 ``State not found``, 400 ``State is not queued``.
        """
        return _transitions.prune(self.store, self._state(state_id), data, self.clock.now())

    @_locked
    def re_enqueue_after(self, namespace: str, state_id: str, *, enqueue_after: int) -> JsonDict:
        """POST ``/state/{id}/re-enqueue-after`` (§2.11, §6.2); ``enqueue_after`` is a delay in
        ms (> 0, validated by the route).
        Returns ``{"enqueue_after": now_ms + delay, "status": "CREATED"}``.
        """
        state = self._state(state_id)
        return _transitions.re_enqueue_after(self.store, state, enqueue_after, self.clock.now())

    @_locked
    def manual_retry(self, namespace: str, state_id: str, *, fanout_id: str) -> JsonDict:
        """POST ``/state/{id}/manual-retry`` (§2.12, §6.3): ``{"id", "status": "CREATED"}``;
        409 ``Duplicate retry state detected``."""
        state = self._state(state_id)
        if state.namespace_name != namespace:  # this lookup filters by namespace (§6.3)
            raise ApiError(404, "State not found")
        return _transitions.manual_retry(self.store, state, fanout_id, self.clock.now())

    @_locked
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

    # -- reads (§7) ------------------------------------------------------------------------------

    @_locked
    def list_runs(self, namespace: str, page: int, size: int) -> JsonDict:
        """GET ``/runs/{page}/{size}`` (§2.14, §7.1). ``page < 1`` → 400 (upstream 500);
        ``size == 0`` → all runs; negative ``size`` → ``abs(size)``."""
        return list_runs(self.store, namespace, page, size)

    @_locked
    def run_graph(self, namespace: str, run_id: str) -> JsonDict:
        """GET ``/states/run/{run_id}/graph`` (§2.15, §7.2)."""
        return run_graph(self.store, namespace, run_id)

    @_locked
    def node_details(self, namespace: str, graph_name: str, run_id: str, node_id: str) -> JsonDict:
        """GET ``/graph/{g}/run/{run_id}/node/{node_id}`` (§2.16)."""
        return node_details(self.store, namespace, graph_name, run_id, node_id)

    # -- inspection helpers (not endpoints) ------------------------------------------------------

    @_locked
    def states_of_run(self, run_id: str) -> list[JsonDict]:
        """Every state of a run in creation order, as dicts with the §3.1 fields (``id`` as str)."""
        return [state.to_dict() for state in self.store.run_states.get(run_id, [])]

    @_locked
    def run_summary(self, run_id: str) -> JsonDict | None:
        """The run as a §7.1 runs-list item, or ``None`` for an unknown run id."""
        run = self.store.runs.get(run_id)
        return None if run is None else run_summary(self.store, run)

    @_locked
    def check_invariants(self) -> None:
        """Raise ``AssertionError`` if the store's indexes disagree with its states."""
        check_invariants(self.store)

"""State transitions driven by the runtime: executed, errored, prune, re-enqueue, manual retry.

Contract §3.2 (preconditions), §3.4 (fan-out), §5 (automatic retries), §6 (signals and manual
retry). Each function takes the already looked-up state and the current clock reading, applies
the change to the store, and returns the response body. Preconditions raise
:class:`~fake_state_manager._errors.ApiError` before anything is changed.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Mapping, Sequence
from typing import Any

from fake_state_manager._engine.next_states import create_next_states, fingerprint
from fake_state_manager._engine.retry import retry_delay_ms
from fake_state_manager._engine.templates import plain
from fake_state_manager._errors import ApiError, DuplicateKeyError
from fake_state_manager._json import JsonDict
from fake_state_manager._store.documents import (
    CREATED,
    ERRORED,
    EXECUTED,
    MAX_ENQUEUE_AFTER_MS,
    PRUNED,
    QUEUED,
    RETRY_CREATED,
    State,
    epoch_ms,
)
from fake_state_manager._store.store import Store

__all__ = ["errored", "executed", "manual_retry", "prune", "re_enqueue_after"]



def executed(
    store: Store, state: State, outputs: Sequence[Mapping[str, Any]], now: float
) -> JsonDict:
    """§3.4: record the outputs (fanning out N-1 extra EXECUTED states), then §3.5."""
    if state.status != QUEUED:
        raise ApiError(400, "State is not queued")
    now_ms = epoch_ms(now)
    items = [plain(output) for output in outputs]
    state.outputs = items[0] if items else {}
    state.updated_at = now
    store.set_status(state, EXECUTED)
    batch = [state]
    for extra in items[1:]:
        # §3.4: the extra docs get defaults for retry_count, fanout_id and does_unites.
        copy = _copy(store, state, now, now_ms, status=EXECUTED, does_unites=False)
        copy.outputs = extra
        store.insert_state(copy, now_ms)
        batch.append(copy)
    # Upstream runs this in a background task after answering; done synchronously here.
    create_next_states(store, batch, now=now)
    return {"status": "EXECUTED"}


def errored(
    store: Store, state: State, namespace: str, error: str, now: float, rng: random.Random
) -> JsonDict:
    """§5 errored flow: retry while the budget lasts, else ERRORED."""
    if state.status not in (QUEUED, EXECUTED):
        raise ApiError(400, "State is not queued or executed")
    if state.status == EXECUTED:
        raise ApiError(400, "State is already executed")
    template = store.graphs.get((namespace, state.graph_name))
    if template is None:
        raise ApiError(404, "Graph template not found")
    policy = template.retry_policy
    now_ms = epoch_ms(now)
    retry_created = False
    if state.retry_count < policy.max_retries:
        delay = retry_delay_ms(policy, state.retry_count + 1, rng)
        retry = _copy(store, state, now, now_ms + delay)
        retry.retry_count = state.retry_count + 1
        retry.fanout_id = state.fanout_id  # the same fanout_id: duplicates collide (§3.1)
        if retry.does_unites:
            retry.state_fingerprint = fingerprint(retry)
        with contextlib.suppress(DuplicateKeyError):  # step 4: still counts as "retry created"
            store.insert_state(retry, now_ms)
        retry_created = True
    store.set_status(state, RETRY_CREATED if retry_created else ERRORED)
    state.error = error
    state.updated_at = now
    return {"status": "ERRORED", "retry_created": retry_created}


def prune(store: Store, state: State, data: Mapping[str, Any], now: float) -> JsonDict:
    """§6.1: a QUEUED state becomes PRUNED with ``data``; the branch ends."""
    if state.status != QUEUED:
        raise ApiError(400, "State is not queued")
    store.set_status(state, PRUNED)
    state.data = plain(data)
    state.updated_at = now
    return {"enqueue_after": state.enqueue_after, "status": "PRUNED"}


def re_enqueue_after(store: Store, state: State, delay_ms: int, now: float) -> JsonDict:
    """§6.2: the same state becomes CREATED, due ``delay_ms`` from now, whatever its status."""
    now_ms = epoch_ms(now)
    when = now_ms + delay_ms
    if when > MAX_ENQUEUE_AFTER_MS:
        raise ApiError(
            400,
            "enqueue_after is too large: the delay must be at most "
            f"{MAX_ENQUEUE_AFTER_MS - now_ms} ms",
        )
    store.set_created(state, when, now_ms)
    state.updated_at = now
    return {"enqueue_after": when, "status": "CREATED"}


def manual_retry(store: Store, state: State, fanout_id: str, now: float) -> JsonDict:
    """§6.3: a fresh CREATED copy with ``retry_count`` 0; 409 on a unique-key clash."""
    now_ms = epoch_ms(now)
    retry = _copy(store, state, now, now_ms)
    retry.fanout_id = fanout_id
    retry.manual_retry_fanout_id = fanout_id
    if retry.does_unites:
        retry.state_fingerprint = fingerprint(retry)
    try:
        store.insert_state(retry, now_ms)
    except DuplicateKeyError:
        raise ApiError(409, "Duplicate retry state detected") from None
    store.set_status(state, RETRY_CREATED)
    state.updated_at = now
    return {"id": retry.id, "status": "CREATED"}


def _copy(
    store: Store,
    state: State,
    now: float,
    enqueue_after: int,
    *,
    status: str = CREATED,
    does_unites: bool | None = None,
) -> State:
    """A fresh copy of ``state`` (same node, run, inputs and parents) with a new id and a new
    ``fanout_id``; outputs {}, error None, data {}, retry_count 0. Used for retries (§5 step 3,
    §6.3: CREATED, ``does_unites`` copied) and fan-out items (§3.4: EXECUTED, not uniting)."""
    return store.new_state(
        node_name=state.node_name,
        namespace_name=state.namespace_name,
        identifier=state.identifier,
        graph_name=state.graph_name,
        run_id=state.run_id,
        inputs=dict(state.inputs),
        parents=dict(state.parents),
        enqueue_after=enqueue_after,
        now=now,
        status=status,
        does_unites=state.does_unites if does_unites is None else does_unites,
    )

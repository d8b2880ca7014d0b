"""Random walks over the engine: only ApiError escapes, and the store's invariants always hold."""

from __future__ import annotations

import random
import threading

import pytest

from fake_state_manager._engine.engine import Engine
from fake_state_manager._errors import ApiError
from fake_state_manager._store.documents import ALL_STATUSES
from tests.builders import NAMESPACE
from tests.fake_state_manager.engine_helpers import fan_in_graph, make_engine

NODE_NAMES = ["R", "S", "W", "M"]


def _graph(engine: Engine) -> None:
    """r -> s (fans out) -> w -> m (unites r), plus a cheap retry policy."""
    fan_in_graph(
        engine,
        retry_policy={"max_retries": 2, "strategy": "FIXED_FULL_JITTER", "backoff_factor": 500},
    )


def _step(engine: Engine, rng: random.Random, queued: list[str]) -> None:
    state_ids = list(engine.store.states)
    known = rng.choice(state_ids) if state_ids else "0" * 24
    target = queued.pop(rng.randrange(len(queued))) if queued and rng.random() < 0.8 else known
    actions = ["trigger", "enqueue", "executed", "errored", "prune", "requeue", "retry", "tick"]
    (action,) = rng.choices(actions, weights=[2, 8, 12, 2, 1, 1, 1, 2])
    if action == "trigger":
        engine.trigger(NAMESPACE, "g", start_delay=rng.choice([0, 0, 700]))
    elif action == "enqueue":
        names = NODE_NAMES if rng.random() < 0.8 else rng.sample(NODE_NAMES, rng.randint(0, 4))
        claimed = engine.enqueue(NAMESPACE, nodes=names, batch_size=rng.randint(-1, 5))["states"]
        queued.extend(s["state_id"] for s in claimed)
    elif action == "executed":
        count = rng.choice([0, 1, 1, 2, 3])
        outputs = [{"v": "x", "item": str(i), "done": "y"} for i in range(count)]
        engine.executed(NAMESPACE, target, outputs=outputs)
    elif action == "errored":
        engine.errored(NAMESPACE, target, error="boom")
    elif action == "prune":
        engine.prune(NAMESPACE, target, data={"k": 1})
    elif action == "requeue":
        engine.re_enqueue_after(NAMESPACE, target, enqueue_after=rng.choice([1, 300, 5000]))
    elif action == "retry":
        engine.manual_retry(
            NAMESPACE, target, fanout_id=rng.choice(["f1", "f2", str(rng.random())])
        )
    else:
        engine.clock.advance(rng.choice([0.1, 0.5, 2.0]))  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(4))
def test_random_walk_keeps_invariants(seed: int) -> None:
    engine, _ = make_engine(seed)
    _graph(engine)
    rng = random.Random(seed)
    queued: list[str] = []
    api_errors: list[int] = []
    for _ in range(300):
        try:
            _step(engine, rng, queued)
        except ApiError as exc:
            api_errors.append(exc.status)
        engine.check_invariants()
    assert api_errors
    assert set(api_errors) <= {400, 404, 409}
    for run in engine.store.runs.values():
        summary = engine.run_summary(run.run_id)
        assert summary is not None
        assert summary["total_count"] == len(engine.store.run_states[run.run_id])
        assert set(engine.run_graph(NAMESPACE, run.run_id)["execution_summary"]) == set(
            ALL_STATUSES
        )
    # Exactly one unite state per (run, r state, retry_count, manual retry fanout id); fan-out
    # copies of a unite state are not unite states themselves (§3.4: does_unites false).
    keys = [
        (s.run_id, s.parents.get("r"), s.retry_count, s.manual_retry_fanout_id)
        for s in engine.store.states.values()
        if s.identifier == "m" and s.does_unites
    ]
    assert len(keys) == len(set(keys))


def test_concurrent_enqueue_from_threads_claims_each_state_once() -> None:
    engine, _ = make_engine()
    _graph(engine)
    for _ in range(400):
        engine.trigger(NAMESPACE, "g")
    claimed: list[str] = []
    guard = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        while True:
            states = engine.enqueue(NAMESPACE, nodes=["R"], batch_size=7)["states"]
            if not states:
                return
            with guard:
                claimed.extend(s["state_id"] for s in states)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(claimed) == 400
    assert len(set(claimed)) == 400
    engine.check_invariants()

"""Automatic retries through ``errored`` with every strategy and exact delays (contract §5)."""

from __future__ import annotations

import random

import pytest

from exo_ref import ManualClock, RetryStrategyEnum
from fake_state_manager._engine.engine import Engine
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.engine_helpers import (
    START_MS,
    claim,
    make_engine,
    register,
    run_states,
    upsert_valid,
)

# The nine §5 strategies; tests/exo_ref/test_models.py pins the enum to upstream's members.
STRATEGIES = [m.value for m in RetryStrategyEnum]


def _expected(strategy: str, n: int, b: int, e: int, rng: random.Random) -> int:
    """The §5 table, written out independently of the implementation."""
    family, _, jitter = strategy.partition("_")
    base = {"EXPONENTIAL": b * e ** (n - 1), "LINEAR": b * n, "FIXED": b}[family]
    if jitter == "FULL_JITTER":
        return int(rng.uniform(0, base))
    if jitter == "EQUAL_JITTER":
        return int(base / 2 + rng.uniform(0, base / 2))
    return base


def _setup(engine: Engine, policy: dict[str, object]) -> str:
    register(engine, "A", inputs=[], outputs=[])
    upsert_valid(engine, "g", [graph_node("a")], retry_policy=policy)
    return str(engine.trigger(NAMESPACE, "g")["run_id"])


def _fail_until_exhausted(engine: Engine, clock: ManualClock, run_id: str) -> list[int]:
    """Claim and fail every attempt, jumping time to each retry; returns the delays seen."""
    delays: list[int] = []
    while True:
        due = engine.next_due_time()
        if due is not None:
            clock.advance_to(due)  # jump straight to the retry's enqueue_after
        (state,) = claim(engine, "A")
        now_ms = int(engine.clock.now() * 1000)
        answer = engine.errored(NAMESPACE, state["state_id"], error="boom")
        assert answer["status"] == "ERRORED"
        if not answer["retry_created"]:
            return delays
        newest = run_states(engine, run_id)[-1]
        delays.append(newest["enqueue_after"] - now_ms)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_every_strategy_gives_the_exact_seeded_delays(strategy: str) -> None:
    engine, clock = make_engine(seed=42)
    run_id = _setup(
        engine, {"max_retries": 3, "strategy": strategy, "backoff_factor": 1000, "exponent": 3}
    )
    delays = _fail_until_exhausted(engine, clock, run_id)
    reference = random.Random(42)
    assert delays == [_expected(strategy, n, 1000, 3, reference) for n in (1, 2, 3)]
    docs = run_states(engine, run_id)
    assert [d["status"] for d in docs] == ["RETRY_CREATED"] * 3 + ["ERRORED"]
    assert [d["retry_count"] for d in docs] == [0, 1, 2, 3]
    assert len({d["fanout_id"] for d in docs}) == 1  # retries keep the fanout_id
    assert all(d["error"] == "boom" for d in docs)
    summary = engine.run_summary(run_id)
    assert summary is not None
    assert (summary["retried_count"], summary["errored_count"], summary["status"]) == (
        3,
        1,
        "FAILED",
    )
    engine.check_invariants()


def test_default_policy_is_2_4_8_seconds_and_waits_on_the_clock() -> None:
    engine, clock = make_engine()
    run_id = _setup(engine, {})
    (state,) = claim(engine, "A")
    engine.errored(NAMESPACE, state["state_id"], error="x")
    retry = run_states(engine, run_id)[-1]
    assert retry["enqueue_after"] == START_MS + 2000
    assert retry["status"] == "CREATED"
    assert (retry["outputs"], retry["error"], retry["data"]) == ({}, None, {})
    assert engine.next_due_time() == (START_MS + 2000) / 1000
    clock.advance(1.999)
    assert claim(engine, "A") == []
    clock.advance(0.001)
    (again,) = claim(engine, "A")
    clock.advance(10)
    engine.errored(NAMESPACE, again["state_id"], error="x")
    assert run_states(engine, run_id)[-1]["enqueue_after"] == START_MS + 12_000 + 4000


def test_max_delay_caps_every_delay() -> None:
    engine, clock = make_engine()
    run_id = _setup(
        engine,
        {"max_retries": 4, "strategy": "EXPONENTIAL", "backoff_factor": 1000, "max_delay": 2500},
    )
    assert _fail_until_exhausted(engine, clock, run_id) == [1000, 2000, 2500, 2500]


def test_zero_max_retries_errors_at_once() -> None:
    engine, clock = make_engine()
    run_id = _setup(engine, {"max_retries": 0})
    assert _fail_until_exhausted(engine, clock, run_id) == []
    assert [d["status"] for d in run_states(engine, run_id)] == ["ERRORED"]


def test_duplicate_retry_still_counts_as_created() -> None:
    engine, clock = make_engine()
    run_id = _setup(engine, {"max_retries": 3})
    (state,) = claim(engine, "A")
    assert engine.errored(NAMESPACE, state["state_id"], error="1")["retry_created"] is True
    # Revive the original and fail it again: its retry (same fanout_id, retry_count 1) exists.
    engine.re_enqueue_after(NAMESPACE, state["state_id"], enqueue_after=1)
    clock.advance(2)
    claimed = claim(engine, "A")
    assert state["state_id"] in [c["state_id"] for c in claimed]
    assert engine.errored(NAMESPACE, state["state_id"], error="2")["retry_created"] is True
    assert len(run_states(engine, run_id)) == 2
    engine.check_invariants()

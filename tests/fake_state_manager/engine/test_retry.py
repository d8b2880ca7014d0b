"""Tests of the retry delay formulas (contract §5)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exo_ref._models import RetryPolicyModel, RetryStrategyEnum
from fake_state_manager._engine.retry import retry_delay_ms
from fake_state_manager._store.documents import MAX_ENQUEUE_AFTER_MS

S = RetryStrategyEnum

# random.Random(7).uniform(0, 1) == 0.3238..., so FULL = int(0.3238 * base) and
# EQUAL = int(base / 2 + 0.3238 * base / 2), with one fresh Random(7) per call.
EXACT = [
    pytest.param(S.EXPONENTIAL, [1000, 3000, 9000, 27000], id="exponential"),
    pytest.param(S.EXPONENTIAL_FULL_JITTER, [323, 971, 2914, 8743], id="exponential-full"),
    pytest.param(S.EXPONENTIAL_EQUAL_JITTER, [661, 1985, 5957, 17871], id="exponential-equal"),
    pytest.param(S.LINEAR, [1000, 2000, 3000, 4000], id="linear"),
    pytest.param(S.LINEAR_FULL_JITTER, [323, 647, 971, 1295], id="linear-full"),
    pytest.param(S.LINEAR_EQUAL_JITTER, [661, 1323, 1985, 2647], id="linear-equal"),
    pytest.param(S.FIXED, [1000, 1000, 1000, 1000], id="fixed"),
    pytest.param(S.FIXED_FULL_JITTER, [323, 323, 323, 323], id="fixed-full"),
    pytest.param(S.FIXED_EQUAL_JITTER, [661, 661, 661, 661], id="fixed-equal"),
]


@pytest.mark.parametrize(("strategy", "expected"), EXACT)
def test_exact_delays_with_seeded_random(strategy: S, expected: list[int]) -> None:
    policy = RetryPolicyModel(strategy=strategy, backoff_factor=1000, exponent=3)
    assert [retry_delay_ms(policy, n, random.Random(7)) for n in (1, 2, 3, 4)] == expected


def test_defaults_give_2_4_8_seconds() -> None:
    policy = RetryPolicyModel()
    assert [retry_delay_ms(policy, n, random.Random()) for n in (1, 2, 3)] == [2000, 4000, 8000]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        pytest.param(S.EXPONENTIAL, [1000, 3000, 5000, 5000], id="exponential"),
        pytest.param(S.LINEAR, [1000, 2000, 3000, 4000], id="linear-below-cap"),
        pytest.param(S.EXPONENTIAL_EQUAL_JITTER, [661, 1985, 5000, 5000], id="equal-jitter"),
        pytest.param(S.EXPONENTIAL_FULL_JITTER, [323, 971, 2914, 5000], id="full-jitter"),
    ],
)
def test_max_delay_caps_after_jitter(strategy: S, expected: list[int]) -> None:
    policy = RetryPolicyModel(strategy=strategy, backoff_factor=1000, exponent=3, max_delay=5000)
    assert [retry_delay_ms(policy, n, random.Random(7)) for n in (1, 2, 3, 4)] == expected


def test_unjittered_strategies_do_not_draw_from_the_random_source() -> None:
    rng = random.Random(1)
    state = rng.getstate()
    for strategy in (S.EXPONENTIAL, S.LINEAR, S.FIXED):
        retry_delay_ms(RetryPolicyModel(strategy=strategy), 2, rng)
    assert rng.getstate() == state


def test_jittered_strategies_draw_once() -> None:
    rng, twin = random.Random(3), random.Random(3)
    retry_delay_ms(RetryPolicyModel(strategy=S.LINEAR_FULL_JITTER), 2, rng)
    twin.random()
    assert rng.getstate() == twin.getstate()


@pytest.mark.parametrize("n", [pytest.param(0, id="zero"), pytest.param(-1, id="negative")])
def test_retry_number_below_one_raises(n: int) -> None:
    with pytest.raises(ValueError, match="retry number must be >= 1"):
        retry_delay_ms(RetryPolicyModel(), n, random.Random())


def test_huge_retry_numbers_are_clamped_not_overflowing() -> None:
    full = RetryPolicyModel(strategy=S.EXPONENTIAL_FULL_JITTER)
    assert 0 <= retry_delay_ms(full, 5000, random.Random(0)) <= MAX_ENQUEUE_AFTER_MS
    assert retry_delay_ms(RetryPolicyModel(), 5000, random.Random(0)) == MAX_ENQUEUE_AFTER_MS


@given(
    strategy=st.sampled_from(list(S)),
    n=st.integers(1, 40),
    backoff=st.integers(1, 10**6),
    exponent=st.integers(1, 5),
    max_delay=st.one_of(st.none(), st.integers(1, 10**7)),
    seed=st.integers(0, 2**32),
)
def test_delay_bounds(
    strategy: S, n: int, backoff: int, exponent: int, max_delay: int | None, seed: int
) -> None:
    policy = RetryPolicyModel(
        strategy=strategy, backoff_factor=backoff, exponent=exponent, max_delay=max_delay
    )
    name = strategy.value
    if name.startswith("EXPONENTIAL"):
        base = backoff * exponent ** (n - 1)
    elif name.startswith("LINEAR"):
        base = backoff * n
    else:
        base = backoff
    base = min(base, MAX_ENQUEUE_AFTER_MS)
    delay = retry_delay_ms(policy, n, random.Random(seed))
    assert delay == retry_delay_ms(policy, n, random.Random(seed))
    cap = base if max_delay is None else min(base, max_delay)
    if name.endswith("FULL_JITTER"):
        assert 0 <= delay <= cap
    elif name.endswith("EQUAL_JITTER"):
        assert min(base // 2, cap) <= delay <= cap
    else:
        assert delay == cap

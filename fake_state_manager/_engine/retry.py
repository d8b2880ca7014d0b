"""Retry delays for the nine strategies of contract §5.

``retry_delay_ms(policy, n, rng)`` is the delay before retry number ``n`` (1-based), in ms.
Jitter draws ``rng.uniform`` exactly as upstream draws ``random.uniform`` (one draw per jittered
delay, none otherwise), so a seeded ``random.Random`` gives reproducible delays.
"""

from __future__ import annotations

import random

from exo_ref import RetryPolicyModel, RetryStrategyEnum
from fake_state_manager._store.documents import MAX_ENQUEUE_AFTER_MS

__all__ = ["retry_delay_ms"]

# Bases are clamped to MAX_ENQUEUE_AFTER_MS: upstream cannot store a larger ``enqueue_after``
# (its insert fails), and floats overflow on jitter beyond ~2**1024 (docs/fidelity.md).

# The nine strategies are named <BASE>[_<JITTER>] (contract §5): EXPONENTIAL, LINEAR or FIXED
# bases, with no jitter, FULL_JITTER or EQUAL_JITTER.
_EXPONENTIAL = frozenset(s for s in RetryStrategyEnum if s.value.startswith("EXPONENTIAL"))
_LINEAR = frozenset(s for s in RetryStrategyEnum if s.value.startswith("LINEAR"))
_FULL_JITTER = frozenset(s for s in RetryStrategyEnum if s.value.endswith("_FULL_JITTER"))
_EQUAL_JITTER = frozenset(s for s in RetryStrategyEnum if s.value.endswith("_EQUAL_JITTER"))


def retry_delay_ms(policy: RetryPolicyModel, n: int, rng: random.Random) -> int:
    """The delay in ms before retry ``n`` under ``policy`` (contract §5 table).

    Args:
        policy: The graph's retry policy.
        n: The retry number, ``old retry_count + 1``; must be >= 1.
        rng: The random source for jitter (inject a seeded one in tests).

    Raises:
        ValueError: ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"retry number must be >= 1, got {n}")
    b = policy.backoff_factor
    strategy = policy.strategy
    if strategy in _EXPONENTIAL:
        base = _clamped_power(b, policy.exponent, n - 1)
    elif strategy in _LINEAR:
        base = b * n
    else:
        base = b
    base = min(base, MAX_ENQUEUE_AFTER_MS)
    delay: int
    if strategy in _FULL_JITTER:
        delay = int(rng.uniform(0, base))
    elif strategy in _EQUAL_JITTER:
        delay = int(base / 2 + rng.uniform(0, base / 2))
    else:
        delay = base
    if policy.max_delay is not None:
        delay = min(delay, policy.max_delay)
    return delay


def _clamped_power(factor: int, exponent: int, power: int) -> int:
    """``factor * exponent**power``, stopping early once it exceeds :data:`MAX_ENQUEUE_AFTER_MS`."""
    value = factor
    for _ in range(power):
        if value > MAX_ENQUEUE_AFTER_MS:
            break
        value *= exponent
    return value

"""Capped exponential backoff with jitter, for every retry loop in exo_ref.

Registration, reports, secrets (exo_ref._runtime_client) and poll errors (exo_ref._poller) all
space their retries with a :class:`Backoff`; the random source is injected so tests are
deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = ["Backoff", "RandomSource"]


class RandomSource(Protocol):
    """What jitter needs from a random generator (``random.Random`` fits)."""

    def random(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter.

    The ``n``-th consecutive failure waits ``min(maximum, initial * multiplier**(n-1))`` scaled by
    a random factor in ``(1 - jitter, 1]``. With ``jitter <= 0.5`` and ``multiplier >= 2`` the
    waits never shrink from one failure to the next until the cap is reached.
    """

    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: RandomSource) -> float:
        """Seconds to wait after the ``attempt``-th consecutive failure (``attempt >= 1``)."""
        exponent = min(max(attempt - 1, 0), 64)  # 2.0**64 is finite; larger could overflow
        base = min(self.maximum, self.initial * self.multiplier**exponent)
        return base * (1.0 - self.jitter * rng.random())

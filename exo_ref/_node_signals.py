"""Signals a node raises to end a state without reporting outputs (contract §6.1, §6.2)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

__all__ = ["PruneSignal", "ReQueueAfterSignal"]

# The re-enqueue-after endpoint rejects a delay of 0 ms with a 422 (contract §2.11); upstream
# sent int(seconds * 1000), so any delay under 1 ms crashed its worker (contract §8.9 item 13).
MIN_REQUEUE_DELAY_MS = 1


class PruneSignal(Exception):
    """Raise from ``execute`` to end this branch of the run: the state becomes PRUNED.

    Args:
        data: JSON-serialisable details stored on the state (contract §6.1). A fresh dict per
            signal: no shared mutable default (upstream defect §8.9 item 13).
    """

    def __init__(self, data: Mapping[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data) if data is not None else {}
        super().__init__(f"Prune signal received with data: {self.data}")


class ReQueueAfterSignal(Exception):
    """Raise from ``execute`` to run this state again after ``delay`` (contract §6.2).

    The same state goes back to CREATED; it does not count as a failure or a retry.

    Args:
        delay: how long to wait; must be positive. Delays under 1 ms are sent as 1 ms.

    Raises:
        ValueError: if ``delay`` is zero or negative (upstream raised a plain ``Exception`` with
            the same text, ``Delay must be greater than 0``).
    """

    def __init__(self, delay: timedelta) -> None:
        if not isinstance(delay, timedelta):
            raise TypeError(f"ReQueueAfterSignal needs a datetime.timedelta, got {delay!r}")
        if delay.total_seconds() <= 0:
            raise ValueError("Delay must be greater than 0")
        self.delay = delay
        super().__init__(f"ReQueueAfter signal received with delay {delay}")

    @property
    def delay_ms(self) -> int:
        """The delay as the endpoint expects it: whole milliseconds, at least 1."""
        return max(MIN_REQUEUE_DELAY_MS, int(self.delay.total_seconds() * 1000))

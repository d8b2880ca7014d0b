"""Cron expressions for graph triggers (contract §4.1, §4.7), in UTC.

Upstream validates with ``croniter.is_valid`` and computes fire times with croniter in the
server's local naive time (the docs say UTC). The fake works in UTC epoch seconds read from the
injected clock, so tests under a ``ManualClock`` are deterministic whatever the host's zone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from croniter import croniter

__all__ = ["fires_between", "is_valid", "next_fire"]


def is_valid(expression: str) -> bool:
    """Whether croniter accepts ``expression`` (5 fields, a 6th seconds field, ``@daily``...)."""
    try:
        return bool(croniter.is_valid(expression))
    except Exception:  # noqa: BLE001 - any croniter failure means "not valid"
        return False


def _iterator(expression: str, after: float) -> croniter:
    if not is_valid(expression):
        raise ValueError(f"Invalid cron expression: {expression!r}")
    return croniter(expression, datetime.fromtimestamp(after, UTC))


def next_fire(expression: str, after: float) -> float:
    """The first fire time strictly after ``after`` (UTC epoch seconds).

    Raises:
        ValueError: ``expression`` is not a valid cron expression, or it never fires again
            (croniter's ``CroniterBadDateError``, e.g. ``0 0 31 2 *`` or a past year field;
            upstream then records ``Validation failed due to unexpected error: ...``).
    """
    return float(_iterator(expression, after).get_next(datetime).timestamp())


def fires_between(expression: str, after: float, until: float) -> Iterator[float]:
    """Fire times ``t`` with ``after < t <= until``, in order (the catch-up burst of §4.7).

    Raises:
        ValueError: ``expression`` is not a valid cron expression.
    """
    iterator = _iterator(expression, after)
    while True:
        fire = float(iterator.get_next(datetime).timestamp())
        if fire > until:
            return
        yield fire

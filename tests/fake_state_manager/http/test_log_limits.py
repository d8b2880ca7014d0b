"""A log one client cannot flood (fake_state_manager._http.log_limits)."""

from __future__ import annotations

import logging

import pytest

from fake_state_manager._http.log_limits import RateLimitFilter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("fake_state_manager.clients", level, __file__, 1, msg, args, None)


def test_at_most_burst_lines_per_kind_then_a_count_of_the_dropped() -> None:
    clock = Clock()
    limit = RateLimitFilter(burst=2, window=60.0, now=clock)
    passed = [limit.filter(_record("%s went away", f"client-{i}")) for i in range(5)]
    assert passed == [True, True, False, False, False]
    other = _record("closing %s", "c")  # another kind of line has its own allowance
    assert limit.filter(other)
    clock.now = 60.0
    first = _record("%s went away", "client-9")
    assert limit.filter(first)
    assert first.getMessage() == "client-9 went away (3 similar lines suppressed)"
    second = _record("%s went away", "client-10")
    assert limit.filter(second)
    assert second.getMessage() == "client-10 went away"


def test_errors_always_pass() -> None:
    limit = RateLimitFilter(burst=1, window=60.0, now=Clock())
    assert limit.filter(_record("boom"))
    assert all(limit.filter(_record("boom", level=logging.ERROR)) for _ in range(10))


@pytest.mark.parametrize(("burst", "window"), [(0, 1.0), (1, 0.0)])
def test_nonsense_bounds_are_refused(burst: int, window: float) -> None:
    with pytest.raises(ValueError, match="burst must be >= 1 and window > 0"):
        RateLimitFilter(burst=burst, window=window)

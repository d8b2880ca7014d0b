"""Tests of cron helpers (contract §4.1, §4.7)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fake_state_manager._graph.cron import fires_between, is_valid, next_fire

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()  # a Thursday, 00:00 UTC


@pytest.mark.parametrize(
    ("expression", "valid"),
    [
        pytest.param("* * * * *", True, id="five-fields"),
        pytest.param("*/15 9-17 * * 1-5", True, id="ranges"),
        pytest.param("0 0 * * * 30", True, id="seconds-field"),
        pytest.param("@daily", True, id="alias"),
        pytest.param("@hourly", True, id="hourly"),
        pytest.param("", False, id="empty"),
        pytest.param("* * * *", False, id="four-fields"),
        pytest.param("60 * * * *", False, id="minute-out-of-range"),
        pytest.param("not cron", False, id="words"),
    ],
)
def test_is_valid(expression: str, valid: bool) -> None:
    assert is_valid(expression) is valid


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        pytest.param("*/5 * * * *", T0, T0 + 300, id="strictly-after"),
        pytest.param("*/5 * * * *", T0 + 1, T0 + 300, id="mid-interval"),
        pytest.param("@daily", T0, T0 + 86400, id="daily"),
        pytest.param("0 12 * * *", T0, T0 + 12 * 3600, id="noon-utc"),
        pytest.param("0 0 * * 1", T0, T0 + 4 * 86400, id="next-monday"),
        pytest.param("* * * * * 30", T0, T0 + 30, id="seconds"),
    ],
)
def test_next_fire_in_utc(expression: str, after: float, expected: float) -> None:
    assert next_fire(expression, after) == expected


def test_fires_between_lists_the_catch_up_burst() -> None:
    assert list(fires_between("0 * * * *", T0, T0 + 3 * 3600)) == [
        T0 + 3600,
        T0 + 7200,
        T0 + 10800,
    ]
    assert list(fires_between("0 * * * *", T0, T0 + 3599)) == []


def test_invalid_expression_raises_value_error() -> None:
    with pytest.raises(ValueError, match="Invalid cron expression"):
        next_fire("nope", T0)
    with pytest.raises(ValueError, match="Invalid cron expression"):
        list(fires_between("nope", T0, T0 + 1))


def test_expression_that_never_fires_raises_value_error() -> None:
    # croniter accepts February 31st but can never schedule it (upstream: INVALID graph).
    assert is_valid("0 0 31 2 *")
    with pytest.raises(ValueError, match="failed to find next date"):
        next_fire("0 0 31 2 *", T0)

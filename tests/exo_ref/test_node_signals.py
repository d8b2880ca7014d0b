"""exo_ref._node_signals: PruneSignal and ReQueueAfterSignal (contract §6.1, §6.2)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from exo_ref import PruneSignal, ReQueueAfterSignal


def test_prune_signal_has_no_shared_mutable_default() -> None:
    first, second = PruneSignal(), PruneSignal()
    first.data["x"] = "1"
    assert second.data == {}
    assert PruneSignal({"a": "b"}).data == {"a": "b"}
    assert "a" in str(PruneSignal({"a": "b"}))


@pytest.mark.parametrize(
    ("delay", "ms"),
    [
        pytest.param(timedelta(seconds=2), 2000, id="seconds"),
        pytest.param(timedelta(milliseconds=1.9), 1, id="truncated-like-upstream"),
        pytest.param(timedelta(microseconds=1), 1, id="under-1ms-becomes-1ms"),
    ],
)
def test_requeue_delay_in_ms(delay: timedelta, ms: int) -> None:
    signal = ReQueueAfterSignal(delay)
    assert signal.delay == delay
    assert signal.delay_ms == ms


def test_requeue_message_names_the_delay() -> None:
    assert "0:00:05" in str(ReQueueAfterSignal(timedelta(seconds=5)))


@pytest.mark.parametrize("delay", [timedelta(0), timedelta(seconds=-1)])
def test_requeue_refuses_non_positive_delays(delay: timedelta) -> None:
    with pytest.raises(ValueError, match="Delay must be greater than 0"):
        ReQueueAfterSignal(delay)


def test_requeue_needs_a_timedelta() -> None:
    with pytest.raises(TypeError, match="timedelta"):
        ReQueueAfterSignal(5)  # type: ignore[arg-type]

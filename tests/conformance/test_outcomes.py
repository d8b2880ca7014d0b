"""Measures both modes judge with (conformance/_outcomes.py): batch sizes, unstarted claims,
concurrency."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance._outcomes import batch_size_error, peak_overlap, unstarted_after_polls


@pytest.mark.parametrize("asked", [1, 2, 4])
def test_a_batch_size_within_the_setting_is_fine(asked: int) -> None:
    assert batch_size_error({"nodes": ["A"], "batch_size": asked}, 4) is None


@pytest.mark.parametrize(
    ("request_body", "shown"),
    [
        pytest.param({"batch_size": 5}, "5", id="above"),
        pytest.param({"batch_size": 0}, "0", id="zero"),
        pytest.param({"batch_size": True}, "True", id="json-true"),
        pytest.param({"batch_size": 2.0}, "2.0", id="float"),
        pytest.param({"nodes": ["A"]}, "None", id="missing"),
        pytest.param("not json", "None", id="not-an-object"),
    ],
)
def test_a_batch_size_outside_the_setting_is_named(request_body: Any, shown: str) -> None:
    assert batch_size_error(request_body, 4) == f"batch_size={shown}, outside 1..batch_size=4"


def test_unstarted_claims_count_starts_before_each_answer_only() -> None:
    # Poll 1 (answered at 10) claims 3; two start at 11 and 12. Poll 2 (answered at 12) claims
    # 2 more: the start at 12 is not before its answer, so 5 - 1 are unstarted then.
    polls = [(3, 10.0), (2, 12.0), (0, 20.0)]
    assert unstarted_after_polls(polls, [12.0, 11.0, 13.0, 14.0, 15.0]) == [3, 4, 0]
    assert unstarted_after_polls([], [1.0]) == []


def test_touching_spans_do_not_overlap_and_open_ones_stay_open() -> None:
    assert peak_overlap([]) == 0
    assert peak_overlap([(0, 1), (1, 2), (2, 3)]) == 1  # one ends as the next begins
    assert peak_overlap([(0, 2), (1, 3), (1.5, None)]) == 3
    assert peak_overlap([(0, None), (5, 6), (7, 8)]) == 2  # the unended one is still running


_SPANS = st.lists(
    st.tuples(st.integers(0, 20), st.integers(0, 10), st.booleans()).map(
        lambda t: (t[0], None if t[2] else t[0] + t[1])
    ),
    max_size=12,
)


@given(_SPANS)
def test_the_peak_is_the_most_spans_open_at_any_moment(spans: list[tuple[int, int | None]]) -> None:
    # Half-open spans [start, end): at a whole or half moment, count the open ones.
    def open_at(t: float) -> int:
        return sum(1 for s, e in spans if s <= t and (e is None or t < e))

    brute = max((open_at(t / 2) for t in range(0, 62)), default=0)
    assert peak_overlap(spans) == brute

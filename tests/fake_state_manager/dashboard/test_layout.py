"""The run graph's layout (fake_state_manager._dashboard.layout): levels, order, edges."""

from __future__ import annotations

from typing import Any

from fake_state_manager._dashboard.layout import (
    MARGIN,
    NODE_H,
    NODE_W,
    layout,
    retry_links,
    unites_edges,
)


def state(
    state_id: str,
    identifier: str,
    parents: dict[str, str] | None = None,
    status: str = "SUCCESS",
    retry_count: int = 0,
    fanout_id: str = "",
    manual: str = "",
    does_unites: bool = False,
) -> dict[str, Any]:
    return {
        "id": state_id,
        "identifier": identifier,
        "parents": parents or {},
        "status": status,
        "retry_count": retry_count,
        "fanout_id": fanout_id or f"f-{state_id}",
        "manual_retry_fanout_id": manual,
        "does_unites": does_unites,
    }


TEMPLATE = [
    {"identifier": "a", "next_nodes": ["b"], "unites": None},
    {"identifier": "b", "next_nodes": ["c", "u"], "unites": None},
    {"identifier": "c", "next_nodes": ["u"], "unites": None},
    {"identifier": "u", "next_nodes": None, "unites": {"identifier": "a"}},
]


def test_level_is_the_longest_path_from_a_root() -> None:
    states = [
        state("a", "a"),
        state("b", "b", {"a": "a"}),
        state("c", "c", {"a": "a", "b": "b"}),
        # u's direct parent is a (the united state), but it waits for b and c: level 3.
        state("u", "u", {"a": "a"}, does_unites=True),
    ]
    unites = unites_edges(states, TEMPLATE)
    assert sorted(unites) == [("b", "u"), ("c", "u")]
    drawn = layout(states, unites)
    assert {i: p.level for i, p in drawn.placed.items()} == {"a": 0, "b": 1, "c": 2, "u": 3}
    assert [e.kind for e in drawn.edges] == ["parent", "parent", "parent", "unites", "unites"]
    assert drawn.height == 2 * MARGIN + 12 + 4 * NODE_H + 3 * 60


def test_a_fanout_is_one_row_centred_and_children_follow_their_parents() -> None:
    states = [
        state("r", "a"),
        state("x1", "b", {"a": "r"}),
        state("x2", "b", {"a": "r"}),
        state("x3", "b", {"a": "r"}),
        state("y3", "c", {"a": "r", "b": "x3"}),
        state("y1", "c", {"a": "r", "b": "x1"}),
    ]
    drawn = layout(states)
    row = sorted((p.x, i) for i, p in drawn.placed.items() if p.level == 1)
    assert [i for _, i in row] == ["x1", "x2", "x3"]
    below = sorted((p.x, i) for i, p in drawn.placed.items() if p.level == 2)
    assert [i for _, i in below] == ["y1", "y3"]  # ordered under their parents
    assert drawn.width == 2 * MARGIN + 3 * NODE_W + 2 * 26
    root = drawn.placed["r"]
    assert root.x == (drawn.width - NODE_W) / 2  # centred
    for placed in drawn.placed.values():
        assert placed.x >= 0
        assert placed.x + NODE_W <= drawn.width
        assert placed.y >= 0
        assert placed.y + NODE_H <= drawn.height


def test_retry_links_follow_automatic_and_manual_retries() -> None:
    states = [
        state("a", "a"),
        # automatic: same fanout id, one more retry
        state("b0", "b", {"a": "a"}, "RETRY_CREATED", 0, "F"),
        state("b1", "b", {"a": "a"}, "RETRY_CREATED", 1, "F"),
        # manual: a new fanout id, retry count back to 0
        state("b2", "b", {"a": "a"}, "ERRORED", 0, "M", manual="M"),
        # another branch's retry is not mixed in
        state("c0", "c", {"a": "a"}, "RETRY_CREATED", 0, "G"),
        state("c1", "c", {"a": "a"}, "SUCCESS", 1, "G"),
    ]
    assert retry_links(states) == {"b0": "b1", "b1": "b2", "c0": "c1"}
    drawn = layout(states, retries=retry_links(states))
    assert sorted((e.source, e.target) for e in drawn.edges if e.kind == "retry") == [
        ("b0", "b1"),
        ("b1", "b2"),
        ("c0", "c1"),
    ]


def test_unites_edges_skip_retried_states_and_other_branches() -> None:
    states = [
        state("a1", "a"),
        state("a2", "a"),  # another root (another item): its branch is not u's
        state("b1", "b", {"a": "a1"}, "RETRY_CREATED"),
        state("b2", "b", {"a": "a1"}, "SUCCESS", manual="m"),
        state("b3", "b", {"a": "a2"}),
        state("u", "u", {"a": "a1"}, does_unites=True),
    ]
    assert unites_edges(states, TEMPLATE) == [("b2", "u")]
    assert unites_edges(states, []) == []  # the template is gone: nothing to tell


def test_an_empty_run_and_unknown_parents() -> None:
    empty = layout([])
    assert (empty.placed, empty.edges) == ({}, [])
    lone = layout([state("x", "b", {"a": "not-in-this-run"})])
    assert lone.placed["x"].level == 0
    assert lone.edges == []

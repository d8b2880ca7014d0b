"""What the pages show (fake_state_manager._dashboard.views), from the engine's dicts."""

from __future__ import annotations

import uuid
from typing import Any

from fake_state_manager._dashboard.views import (
    graph_rows,
    page_of,
    pretty,
    retry_fanout_id,
    run_view,
)


def test_page_of_pages_like_the_runs_list() -> None:
    items = [{"n": i} for i in range(5)]
    assert page_of(items, 1, 2) == [{"n": 0}, {"n": 1}]
    assert page_of(items, 3, 2) == [{"n": 4}]
    assert page_of(items, 4, 2) == []
    assert page_of(items, 2, -2) == [{"n": 2}, {"n": 3}]  # a negative size is its abs
    assert page_of(items, 1, 0) == items  # 0 = all


def test_graph_rows_keep_secret_names_only() -> None:
    rows = graph_rows(
        [
            {
                "name": "z",
                "validation_status": "VALID",
                "validation_errors": [],
                "nodes": [1],
                "triggers": [],
                "secrets": {"b": "gAAAA-opaque", "a": "gAAAA-other"},
                "updated_at": "t",
            },
            {
                "name": "a",
                "validation_status": "INVALID",
                "validation_errors": ["bad"],
                "nodes": [],
                "triggers": None,
                "secrets": {},
            },
        ]
    )
    assert [row.name for row in rows] == ["a", "z"]
    assert rows[1].secret_names == ["a", "b"]
    assert "gAAAA" not in repr(rows)
    assert rows[0].validation_errors == ["bad"]


def test_retry_fanout_id_is_a_uuid_stable_per_state() -> None:
    one = retry_fanout_id("a" * 24)
    assert uuid.UUID(one).version == 5
    assert one == retry_fanout_id("a" * 24) != retry_fanout_id("b" * 24)


def test_pretty_writes_json_without_escaping_text() -> None:
    assert pretty({"x": "é<"}) == '{\n  "x": "é<"\n}'
    assert pretty(float("nan")) == "NaN"


def doc(
    state_id: str, identifier: str, parents: dict[str, str], status: str, **extra: Any
) -> dict[str, Any]:
    return {
        "id": state_id,
        "identifier": identifier,
        "node_name": identifier.title(),
        "parents": parents,
        "status": status,
        "retry_count": 0,
        "fanout_id": f"f{state_id}",
        "manual_retry_fanout_id": "",
        "does_unites": False,
        **extra,
    }


def test_run_view_links_parents_children_fanout_and_retries() -> None:
    states = [
        doc("r", "a", {}, "SUCCESS"),
        doc("x1", "b", {"a": "r"}, "SUCCESS"),
        doc("x2", "b", {"a": "r"}, "RETRY_CREATED"),
        doc("x3", "b", {"a": "r"}, "QUEUED"),
        doc("x4", "b", {"a": "r"}, "ERRORED", manual_retry_fanout_id="m", fanout_id="m"),
    ]
    summary = {"run_id": "run", "status": "PENDING"}
    view = run_view("ns", summary, states, [])
    by_id = view.by_id
    assert by_id["r"].children == ["x1", "x2", "x3", "x4"]
    assert by_id["x1"].parents == [("a", "r", True)]
    assert [by_id[i].fanout for i in ("x1", "x2", "x3", "x4")] == ["1/3", "2/3", "3/3", ""]
    assert (by_id["x2"].next, by_id["x4"].previous) == ("x4", "x2")
    assert [v.id for v in view.states if v.can_retry] == ["x4"]
    assert [v.id for v in view.states if v.can_reenqueue] == ["x3"]
    assert view.layout is not None
    assert not view.finished
    assert view.identifiers == [("a", 1), ("b", 4)]


def test_large_runs_are_listed_not_drawn() -> None:
    states = [doc(f"s{i}", "a", {}, "SUCCESS") for i in range(401)]
    view = run_view("ns", {"run_id": "r", "status": "SUCCESS"}, states, [])
    assert view.layout is None
    assert view.finished
    assert len(view.states) == 401

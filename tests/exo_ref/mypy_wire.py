"""What mypy --strict tells a user of StateManager's typed answers (exo_ref/_wire.py; README).

Not collected by pytest (no ``test_`` prefix): the ``type`` tox env runs mypy on it. Each
``type: ignore`` marks a line mypy must reject; strict mode's ``warn_unused_ignores`` fails the
run if it does not, so a status field that lost its ``Literal`` type, or an answer typed
``dict[str, Any]`` again, fails here.
"""

from __future__ import annotations

from typing import Literal, assert_type

from exo_ref import (
    RunStatus,
    StateManager,
    StateStatus,
    StoredGraphTemplate,
    ValidationStatus,
)


async def statuses_are_literals(sm: StateManager) -> None:
    graph = await sm.upsert_graph("g", [], {})
    assert_type(graph["validation_status"], ValidationStatus)
    assert graph["validation_status"] != "VALD"  # type: ignore[comparison-overlap]

    run = await sm.wait_for_run("r")
    assert_type(run["status"], RunStatus)
    assert run["status"] != "SUCCES"  # type: ignore[comparison-overlap]

    node = await sm.get_node("g", "r", "n")
    assert_type(node["status"], StateStatus)
    assert node["status"] != "ERROR"  # type: ignore[comparison-overlap]

    started = await sm.trigger("g")
    assert_type(started["status"], Literal["CREATED"])
    retried = await sm.manual_retry("s", "f")
    assert_type(retried["status"], Literal["CREATED"])


async def answers_name_their_fields(sm: StateManager) -> None:
    nodes = await sm.list_nodes()
    assert_type(nodes["nodes"][0]["secrets"], list[str])
    templates = (await sm.list_graphs())["templates"]
    assert_type(templates, list[StoredGraphTemplate])
    assert_type(templates[0]["secrets"], dict[str, str])  # ciphertexts (contract §2.5)
    graph = await sm.get_graph("g")
    assert_type(graph["secrets"], dict[str, bool])  # names only (contract §2.4)
    print(graph["secret"])  # type: ignore[typeddict-item]
    page = await sm.list_runs()
    print(page["runs"][0]["sucess_count"])  # type: ignore[typeddict-item]

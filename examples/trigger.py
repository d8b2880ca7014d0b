"""Upsert a graph for one of the example runtimes, trigger it and print the run summary.

Start the dev server and an example runtime first (see examples/README.md), then::

    python examples/trigger.py basic       # MyNode (basic.py, advanced.py, configurations.py)
    python examples/trigger.py multiple    # DataProcessorNode -> DataValidatorNode

Uses the ``StateManager`` client: ``upsert_graph`` and ``trigger`` as in upstream, and the exo_ref
additions ``list_nodes`` and ``wait_for_run``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import anyio

from exo_ref import Clock, ExoRefError, GraphNodeModel, StateManager, SystemClock, WaitTimeoutError

NAMESPACE = "MyProject"
REGISTRATION_TIMEOUT = 30.0  # seconds to wait for a runtime to register the graph's nodes

GRAPHS: dict[str, tuple[str, list[GraphNodeModel], dict[str, str]]] = {
    "basic": (
        "my-graph",
        [
            GraphNodeModel(
                node_name="MyNode", namespace=NAMESPACE, identifier="my_node",
                inputs={"data": "hello"},
            ),
        ],
        {"data": "hello from trigger.py"},
    ),
    "multiple": (
        "data-pipeline",
        [
            GraphNodeModel(
                node_name="DataProcessorNode", namespace=NAMESPACE, identifier="processor",
                inputs={"data": "raw"}, next_nodes=["validator"],
            ),
            GraphNodeModel(
                node_name="DataValidatorNode", namespace=NAMESPACE, identifier="validator",
                inputs={"processed": "${{ processor.outputs.processed }}"},
            ),
        ],
        {"data": "  some raw text  "},
    ),
}


async def wait_until_registered(
    sm: StateManager, names: set[str], clock: Clock | None = None
) -> None:
    """Wait until a runtime has registered ``names`` (a graph is only VALID after that, §4.4).

    Raises:
        WaitTimeoutError: no runtime registered them in time; the message says what to start.
    """
    clock = clock if clock is not None else SystemClock()
    deadline = clock.now() + REGISTRATION_TIMEOUT
    while True:
        registered = {node["name"] for node in (await sm.list_nodes())["nodes"]}
        if names <= registered:
            return
        if clock.now() >= deadline:
            missing = ", ".join(sorted(names - registered))
            raise WaitTimeoutError(
                f"no runtime registered {missing} in namespace {NAMESPACE!r} within "
                f"{REGISTRATION_TIMEOUT:g} s: start the example runtime first (see "
                "examples/README.md) with the same EXOSPHERE_STATE_MANAGER_URI and "
                "EXOSPHERE_API_KEY as this script"
            )
        await clock.sleep(0.1)


async def run_graph_once(which: str = "basic", **options: Any) -> Mapping[str, Any]:
    """Upsert the graph, trigger one run and wait for it. ``options`` go to ``StateManager``."""
    graph_name, nodes, inputs = GRAPHS[which]
    # URI and key come from EXOSPHERE_STATE_MANAGER_URI and EXOSPHERE_API_KEY.
    async with StateManager(NAMESPACE, **options) as sm:
        await wait_until_registered(sm, {node.node_name for node in nodes}, options.get("clock"))
        await sm.upsert_graph(graph_name, nodes, secrets={})
        run = await sm.trigger(graph_name, inputs=inputs)
        print(f"triggered {graph_name}: run {run['run_id']}")
        return await sm.wait_for_run(run["run_id"], timeout=60, poll_interval=0.1)


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else "basic"
    if which not in GRAPHS:
        sys.exit(f"usage: python {sys.argv[0]} {{{'|'.join(GRAPHS)}}}")
    try:
        print(anyio.run(run_graph_once, which))
    except ExoRefError as error:  # a message that says what to do, not a traceback
        sys.exit(f"trigger.py: {error}")

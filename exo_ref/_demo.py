"""``exo-ref demo``: a runtime, the in-process fake state manager and a fan-out/fan-in run.

Everything runs in one process and one event loop, with no sockets: the fake state manager is
reached through ``httpx.ASGITransport``. Time is a :class:`~exo_ref.ManualClock` that jumps
whenever every task is waiting, so poll intervals and the progress ticker cost no wall time and
the demo finishes as fast as the CPU allows.

Steps: start the fake; start a :class:`~exo_ref.Runtime` serving the demo nodes (registration
happens before anything else); upsert the graph (waits for VALID); trigger one run; print progress
until the run is no longer PENDING; print the summary; stop the runtime gracefully.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

import anyio

from ._clock import ManualClock
from ._config import DEFAULT_BATCH_SIZE, DEFAULT_WORKERS
from ._demo_nodes import DEMO_NODES, NO_FAILURE, demo_graph, expected_states
from ._errors import ExoRefError
from ._event_loop import event_loop_options
from ._models import RetryPolicyModel, RetryStrategyEnum
from ._runtime import Runtime
from ._state_manager import StateManager
from ._statuses import ERRORED_STATES, UNFINISHED_STATES
from ._wire import RunGraph, RunSummary

__all__ = ["DEFAULT_FAN_OUT", "DemoOptions", "DemoResult", "run_demo", "run_demo_async"]

DEFAULT_FAN_OUT = 20
NAMESPACE = "exo-ref-demo"
GRAPH_NAME = "fan-out-fan-in"
RUNTIME_NAME = "demo-runtime"
# Virtual seconds (ManualClock): how often the runtime polls when idle and progress is sampled.
POLL_INTERVAL = 0.1
PROGRESS_INTERVAL = 0.1
# Real seconds: a safety net so a broken build fails instead of hanging.
RUN_TIMEOUT = 60.0
# A failing item is retried twice, 1 then 2 (virtual) seconds later (contract §5), then ERRORED.
DEMO_RETRY_POLICY = RetryPolicyModel(
    max_retries=2, strategy=RetryStrategyEnum.EXPONENTIAL, backoff_factor=1000, exponent=2,
    max_delay=None,
)


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``exo-ref demo`` can be asked to do (see ``exo-ref demo --help``)."""

    fan_out: int = DEFAULT_FAN_OUT
    workers: int = DEFAULT_WORKERS
    batch_size: int = DEFAULT_BATCH_SIZE
    backend: str = "asyncio"
    verbose: bool = False
    fail_item: int | None = None


@dataclass(frozen=True, slots=True)
class DemoResult:
    """How the demo run ended."""

    summary: RunSummary
    merge_outputs: dict[str, str]
    expected_states: int

    @property
    def succeeded(self) -> bool:
        return self.summary["status"] == "SUCCESS"


def run_demo(options: DemoOptions, out: TextIO | None = None) -> DemoResult:
    """Run the demo on ``options.backend`` and print to ``out`` (default stdout)."""
    stream = out if out is not None else sys.stdout
    exo_logger = logging.getLogger("exo_ref")
    level = exo_logger.level
    try:
        return anyio.run(
            run_demo_async,
            options,
            stream,
            backend=options.backend,
            backend_options=event_loop_options(options.backend),
        )
    finally:
        exo_logger.setLevel(level)  # the demo quiets the runtime's INFO lines; put them back


async def run_demo_async(options: DemoOptions, out: TextIO) -> DemoResult:
    """The demo itself, on the current event loop."""
    # Imported here: the fake (Starlette) is only needed by the demo, not by the runtime. From
    # the defining module, so that it also works where the package is seen as a namespace.
    from fake_state_manager import FakeStateManager

    def say(line: str) -> None:
        print(line, file=out, flush=True)

    clock = ManualClock(auto_advance=True)
    error: ExoRefError | TimeoutError | None = None
    result: DemoResult | None = None
    async with FakeStateManager(clock=clock) as fake:
        runtime = Runtime(
            NAMESPACE, RUNTIME_NAME, DEMO_NODES, fake.uri, fake.api_key,
            batch_size=options.batch_size, workers=options.workers, poll_interval=POLL_INTERVAL,
            transport=fake.transport, clock=clock,
        )
        if not options.verbose:
            # The demo prints its own account (errors included) of what happened.
            logging.getLogger("exo_ref").setLevel(logging.CRITICAL)
        expected = expected_states(options.fan_out)
        say(
            f"exo-ref demo: in-process fake state manager, runtime {RUNTIME_NAME!r} "
            f"(workers={options.workers}, batch_size={options.batch_size}, "
            f"backend={options.backend})"
        )
        say(
            f"graph {GRAPH_NAME!r}: prepare -> split (fan-out {options.fan_out}) -> work -> "
            "merge (unites: prepare)"
        )
        async with (
            StateManager(NAMESPACE, fake.uri, fake.api_key, transport=fake.transport,
                         clock=clock) as sm,
            anyio.create_task_group() as tg,
        ):
            await tg.start(runtime.run)  # returns once the nodes are registered
            try:
                result = await _drive(sm, clock, options, expected, say)
            except (ExoRefError, TimeoutError) as exc:
                error = exc  # re-raised below, outside the task group (no ExceptionGroup)
            finally:
                runtime.stop()
        say("runtime stopped")
    if error is not None:
        raise error
    assert result is not None
    return result


async def _drive(
    sm: StateManager,
    clock: ManualClock,
    options: DemoOptions,
    expected: int,
    say: Callable[[str], None],
) -> DemoResult:
    graph = await sm.upsert_graph(
        GRAPH_NAME, demo_graph(NAMESPACE), secrets={}, retry_policy=DEMO_RETRY_POLICY,
        polling_interval=POLL_INTERVAL,
    )
    say(f"upserted graph: {graph['validation_status']}")
    fail_item = NO_FAILURE if options.fail_item is None else str(options.fail_item)
    inputs = {"count": str(options.fan_out), "fail_item": fail_item}
    run = await sm.trigger(GRAPH_NAME, inputs=inputs)
    run_id = run["run_id"]
    say(f"triggered run {run_id}")
    with anyio.fail_after(RUN_TIMEOUT):
        summary = await _report_progress(sm, clock, run_id, expected, say)
    say(
        f"run {run_id}: {summary['status']}  states={summary['total_count']} "
        f"success={summary['success_count']} pending={summary['pending_count']} "
        f"errored={summary['errored_count']} retried={summary['retried_count']}"
    )
    run_graph = await sm.get_run_graph(run_id)
    for node in run_graph["nodes"]:
        if node["status"] in ERRORED_STATES:
            say(f"{node['status']} state {node['id']} ({node['identifier']}): {node['error']}")
    merge_outputs = await _merge_outputs(sm, run_id, run_graph)
    if merge_outputs:
        say(f"merge output: {merge_outputs}")
    return DemoResult(summary=summary, merge_outputs=merge_outputs, expected_states=expected)


async def _report_progress(
    sm: StateManager, clock: ManualClock, run_id: str, expected: int, say: Callable[[str], None]
) -> RunSummary:
    """Print a line whenever the per-status counts change; return the final summary."""
    last = ""
    while True:
        counts = (await sm.get_run_graph(run_id))["execution_summary"]
        line = _progress_line(counts, expected)
        if line != last:
            say(line)
            last = line
        if sum(counts.values()) and not _pending(counts):
            # The run status is derived from these same counts (contract §7.1): it is final now.
            return await sm.wait_for_run(run_id, poll_interval=PROGRESS_INTERVAL)
        await clock.sleep(PROGRESS_INTERVAL)


def _pending(counts: dict[str, int]) -> int:
    return sum(counts.get(s, 0) for s in UNFINISHED_STATES)


def _progress_line(counts: dict[str, int], expected: int) -> str:
    done = sum(n for status, n in counts.items() if status not in UNFINISHED_STATES)
    total = max(expected, sum(counts.values()))
    by_status = ", ".join(f"{status} {n}" for status, n in counts.items() if n)
    return f"progress: {done}/{total} states done ({by_status})"


async def _merge_outputs(sm: StateManager, run_id: str, run_graph: RunGraph) -> dict[str, str]:
    for node in run_graph["nodes"]:
        if node["identifier"] == "merge":
            details = await sm.get_node(GRAPH_NAME, run_id, node["id"])
            return {k: str(v) for k, v in details["outputs"].items()}
    return {}

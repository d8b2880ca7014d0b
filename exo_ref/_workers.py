"""The worker pool: executes claimed states and reports each outcome (contract §8.6, §2.8-2.13).

Exactly ``workers`` tasks read one memory stream, so at most ``workers`` states execute at once;
each state gets a fresh node instance. A plain ``def execute`` runs in a worker thread (through a
capacity limiter of the same size) so it cannot block the event loop (upstream defect §8.9 item 9).
Nothing a node or the state manager does can kill a worker: every outcome ends in exactly one
report, and report failures are retried by the client and otherwise logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream
from pydantic import BaseModel, ValidationError

from ._clock import Clock, SystemClock, hold_time
from ._errors import ExoRefError
from ._node import BaseNode, is_async_node
from ._node_signals import PruneSignal, ReQueueAfterSignal
from ._poller import Backlog
from ._runtime_client import ReportOutcome
from ._wire import ClaimedState

__all__ = ["ReportClient", "WorkerPool"]

logger = logging.getLogger("exo_ref.workers")


class ReportClient(Protocol):
    """The calls workers make (``StateManagerClient`` fits)."""

    def secrets(self, state_id: str) -> Awaitable[dict[str, str]]: ...
    def report_executed(
        self, state_id: str, outputs: list[dict[str, Any]]
    ) -> Awaitable[ReportOutcome]: ...
    def report_errored(self, state_id: str, error: str) -> Awaitable[ReportOutcome]: ...
    def report_prune(self, state_id: str, data: dict[str, Any]) -> Awaitable[ReportOutcome]: ...
    def report_re_enqueue_after(self, state_id: str, delay_ms: int) -> Awaitable[ReportOutcome]: ...


@dataclass(frozen=True, slots=True)
class _NodeInfo:
    cls: type[BaseNode]
    is_async: bool
    needs_secrets: bool


class _Failed(Exception):
    """Ends a state as errored with a message prepared by the runtime (not the node)."""


class WorkerPool:
    """Runs ``concurrency`` worker tasks over a stream of claimed states.

    Subclass seams (used by conformance mutants): ``concurrency`` and :meth:`process`.

    Attributes:
        in_flight: states whose execution has started and not yet finished (reports excluded):
            the runtime hands these back if the grace period ends mid-execution.
        returned: states received after :meth:`stop_taking`, never started (handed back).
        executed: how many states this pool has finished (any outcome).
    """

    def __init__(
        self,
        *,
        client: ReportClient,
        nodes: Sequence[type[BaseNode]],
        workers: int,
        backlog: Backlog,
        runtime_label: str,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.concurrency = workers
        self.backlog = backlog
        self.runtime_label = runtime_label
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.in_flight: dict[str, ClaimedState] = {}
        self.returned: list[ClaimedState] = []
        self.executed = 0
        self._stop_taking = False
        self._nodes = {
            node.__name__: _NodeInfo(node, is_async_node(node), bool(node.Secrets.model_fields))
            for node in nodes
        }
        self._threads: anyio.CapacityLimiter | None = None

    def stop_taking(self) -> None:
        """Start no new state: ones received from now on go to :attr:`returned` (hand-back)."""
        self._stop_taking = True

    async def run(self, receive: MemoryObjectReceiveStream[ClaimedState]) -> None:
        """Run until the stream ends (its send side is closed and drained)."""
        self._threads = anyio.CapacityLimiter(self.concurrency)
        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(self._worker, receive)

    async def _worker(self, receive: MemoryObjectReceiveStream[ClaimedState]) -> None:
        while True:
            try:
                state = await receive.receive()
            except anyio.EndOfStream:
                return
            self.backlog.started()
            if self._stop_taking:
                self.returned.append(state)
                continue
            try:
                await self.process(state)
            except Exception:  # a bug must not kill the worker; the state is logged
                logger.exception("Unexpected failure while handling state %s", state.state_id)
            finally:
                self.executed += 1

    async def process(self, state: ClaimedState) -> None:
        """Execute one state and send exactly one report for it."""
        state_id = state.state_id
        self.in_flight[state_id] = state
        try:
            outcome = await self._execute(state)
        except PruneSignal as signal:
            self.in_flight.pop(state_id, None)
            await self.client.report_prune(state_id, signal.data)
        except ReQueueAfterSignal as signal:
            self.in_flight.pop(state_id, None)
            await self.client.report_re_enqueue_after(state_id, signal.delay_ms)
        except _Failed as failure:
            self.in_flight.pop(state_id, None)
            message = str(failure)
            logger.error("State %s errored: %s", state_id, message)  # noqa: TRY400 - no traceback
            await self.client.report_errored(state_id, message)
        except Exception as error:
            self.in_flight.pop(state_id, None)
            message = str(error) or type(error).__name__
            logger.exception(
                "State %s (node %s) raised %s: %s",
                state_id,
                state.node_name,
                type(error).__name__,
                message,
            )
            await self.client.report_errored(state_id, message)
        else:
            self.in_flight.pop(state_id, None)
            await self.client.report_executed(state_id, outcome)

    async def _execute(self, state: ClaimedState) -> list[dict[str, Any]]:
        info = self._nodes.get(state.node_name)
        if info is None:
            raise _Failed(
                f"Node '{state.node_name}' is not served by runtime {self.runtime_label}; "
                f"it serves {sorted(self._nodes)}"
            )
        node_cls = info.cls
        name = node_cls.__name__
        try:
            inputs = node_cls.Inputs.model_validate(state.inputs)
        except ValidationError as error:
            raise _Failed(f"Invalid inputs for node {name}: {_describe(error)}") from None
        raw_secrets: dict[str, str] = {}
        if info.needs_secrets:
            try:
                raw_secrets = await self.client.secrets(state.state_id)
            except ExoRefError as error:
                raise _Failed(f"Could not fetch secrets for node {name}: {error}") from None
        try:
            secrets = node_cls.Secrets.model_validate(raw_secrets)
        except ValidationError as error:
            raise _Failed(f"Invalid secrets for node {name}: {_describe(error)}") from None
        node = node_cls()
        node.inputs = inputs
        node.secrets = secrets
        if info.is_async:
            result: Any = await node.execute()  # type: ignore[misc]
        else:
            # A busy thread is not idle: keep a ManualClock from jumping while it runs.
            with hold_time(self._clock):
                result = await anyio.to_thread.run_sync(
                    node.execute, limiter=self._threads, abandon_on_cancel=True
                )
            if isinstance(result, Awaitable):
                result = await result
        return _dump_outputs(node_cls, result)


def _dump_outputs(node_cls: type[BaseNode], result: object) -> list[dict[str, Any]]:
    """Normalise ``execute``'s result to the executed body (contract §8.6 step 5)."""
    outputs_cls = node_cls.Outputs
    if result is None:
        return []
    if isinstance(result, outputs_cls):
        return [result.model_dump(mode="json")]
    if isinstance(result, list) and all(isinstance(item, outputs_cls) for item in result):
        return [item.model_dump(mode="json") for item in result]
    name = node_cls.__name__
    got = _kind(result, outputs_cls)
    raise _Failed(
        f"Node {name} returned {got}; execute() must return {name}.Outputs, "
        f"a list of {name}.Outputs, or None"
    )


def _kind(value: object, expected: type[BaseModel]) -> str:
    if isinstance(value, list):
        bad = next(item for item in value if not isinstance(item, expected))
        return f"a list containing {_qualname(bad)}"
    return _qualname(value)


def _qualname(value: object) -> str:
    cls = type(value)
    return f"{cls.__qualname__} instance" if isinstance(value, BaseModel) else cls.__name__


def _describe(error: ValidationError) -> str:
    # include_input=False: the offending values may be secrets; locations and reasons suffice.
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(model)"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)

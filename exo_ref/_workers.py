"""The worker pool: executes claimed states and reports each outcome (contract §8.6, §2.8-2.13).

Exactly ``workers`` tasks read one memory stream, so at most ``workers`` states execute at once;
each state gets a fresh node instance. A plain ``def execute`` runs in a worker thread (through a
capacity limiter of the same size) so it cannot block the event loop (upstream defect §8.9 item 9).
Nothing a node or the state manager does can kill a worker: every outcome ends in exactly one
report, and report failures are retried by the client and otherwise logged. A node that raises
``SystemExit``, ``KeyboardInterrupt`` or (asyncio) a ``CancelledError`` while nothing cancelled
it has failed like any other (§8.6 step 7), and a prune whose data cannot be sent as JSON is
reported errored, saying so: either would otherwise leave the state QUEUED for good (§3.2).

Error texts are masked (exo_ref._masking): the errored report (contract §2.9) is stored where any
holder of the API key reads it, so the state's secrets (every secret of its graph, §2.13) and the
runtime's API key become ``***`` in it and in the log line, traceback included. The masking runs
only when a state errors.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import anyio
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from ._clock import Clock, SystemClock, hold_time
from ._errors import ExoRefError
from ._masking import Masker, masked_traceback
from ._node import BaseNode, is_async_node
from ._node_signals import PruneSignal, ReQueueAfterSignal
from ._poller import Backlog
from ._runtime_client import ReportOutcome
from ._wire import ClaimedState

__all__ = ["ReportClient", "WorkerPool", "sendable_prune_data"]

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
    """Ends a state as errored: a message prepared by the runtime, or the node's own exception.

    Attributes:
        secrets: the state's secrets fetched before it failed, masked out of the report and log.
        error: the exception the node raised (its traceback is logged); None for the runtime's
            own messages.
    """

    def __init__(
        self,
        message: str,
        *,
        secrets: Mapping[str, str] | None = None,
        error: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.secrets: Mapping[str, str] = secrets if secrets is not None else {}
        self.error = error


class WorkerPool:
    """Runs ``concurrency`` worker tasks over a stream of claimed states.

    Subclass seams (used by conformance mutants): ``concurrency`` and :meth:`process`.

    ``always_masked``: values masked out of every error text and log line besides each state's
    own secrets (the runtime passes its API key; exo_ref._masking).

    Attributes:
        in_flight: states whose execution has started and not yet finished (reports excluded):
            the runtime hands these back if the grace period ends mid-execution.
        reporting: states whose execution has finished and whose report has not been answered
            (the client may still be retrying it): handed back too if the grace period ends
            first, since the state manager may never have heard of the outcome.
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
        always_masked: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.concurrency = workers
        self.backlog = backlog
        self.runtime_label = runtime_label
        self._clock: Clock = clock if clock is not None else SystemClock()
        self.in_flight: dict[str, ClaimedState] = {}
        self.reporting: dict[str, ClaimedState] = {}
        self.returned: list[ClaimedState] = []
        self.executed = 0
        self._stop_taking = False
        self._nodes = {
            node.__name__: _NodeInfo(node, is_async_node(node), bool(node.Secrets.model_fields))
            for node in nodes
        }
        self._threads: anyio.CapacityLimiter | None = None
        # StateManagerClient.requests_yield (other clients: assume not).
        self._requests_yield = bool(getattr(client, "requests_yield", False))
        # Masked in every error text besides the state's own secrets (the runtime's API key).
        self._always_masked = tuple(always_masked)
        self._always = Masker(self._always_masked)

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
        # A checkpoint per state (receive() makes one) keeps the poller and stop() going when
        # a report can be answered without a real wait (in process); when every request waits
        # on a socket anyway, a waiting state is taken without one.
        skip_checkpoint = self._requests_yield
        while True:
            try:
                if skip_checkpoint:
                    try:
                        state = receive.receive_nowait()
                    except anyio.WouldBlock:
                        state = await receive.receive()
                else:
                    state = await receive.receive()
            except anyio.EndOfStream:
                return
            self.backlog.started()
            if self._stop_taking:
                self.returned.append(state)
                continue
            try:
                await self.process(state)
            except Exception as error:  # noqa: BLE001 - a bug must not kill the worker; logged
                logger.error(  # noqa: TRY400 - the traceback is in the message, masked
                    "Unexpected failure while handling state %s\n%s",
                    state.state_id,
                    masked_traceback(error, self._always),
                )
            finally:
                self.executed += 1

    async def process(self, state: ClaimedState) -> None:
        """Execute one state and send exactly one report for it.

        Each outcome is one INFO line (node, state id, milliseconds of execution), as upstream
        logs each state; failures are ERROR lines with the masked text.
        """
        state_id = state.state_id
        self.in_flight[state_id] = state
        began = time.perf_counter()
        report: Callable[[], Awaitable[object]]
        try:
            outcome = await self._execute(state)
        except PruneSignal as signal:
            report = self._prune_report(state, signal, began)
        except ReQueueAfterSignal as signal:
            _log_outcome(state, f"asked to re-enqueue after {signal.delay_ms} ms", began)
            report = partial(self.client.report_re_enqueue_after, state_id, signal.delay_ms)
        except _Failed as failure:
            report = partial(self._report_failure, state, failure)
        except Exception as error:  # noqa: BLE001 - a runtime bug; reported, the key masked
            report = partial(self._report_failure, state, _Failed(_text(error), error=error))
        else:
            _log_outcome(state, "executed", began)
            report = partial(self.client.report_executed, state_id, outcome)
        self.in_flight.pop(state_id, None)
        self.reporting[state_id] = state
        await report()
        del self.reporting[state_id]  # not on cancellation: then it is handed back

    def _prune_report(
        self, state: ClaimedState, signal: PruneSignal, began: float
    ) -> Callable[[], Awaitable[object]]:
        """The prune report, or an errored one if the signal's data cannot be sent (§2.10)."""
        try:
            data = sendable_prune_data(state.node_name, signal)
        except _Failed as failed:
            return partial(self._report_failure, state, failed)
        _log_outcome(state, "pruned", began)
        return partial(self.client.report_prune, state.state_id, data)

    async def _report_failure(self, state: ClaimedState, failure: _Failed) -> None:
        """Log and report ``failure`` masked with the state's secrets and the API key.

        The traceback goes into the log message as masked text (no ``exc_info``), so no handler
        can render it unmasked (exo_ref._masking).
        """
        mask = Masker([*failure.secrets.values(), *self._always_masked])
        message = mask(str(failure))
        error = failure.error
        if error is None:
            logger.error("State %s errored: %s", state.state_id, message)
        else:
            logger.error(
                "State %s (node %s) raised %s: %s\n%s",
                state.state_id,
                state.node_name,
                type(error).__name__,
                message,
                masked_traceback(error, mask),
            )
        await self.client.report_errored(state.state_id, message)

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
            # A validator's message may quote the value: masked with the fetched secrets.
            raise _Failed(
                f"Invalid secrets for node {name}: {_describe(error)}", secrets=raw_secrets
            ) from None
        try:  # free unless something raises: the secrets ride on the failure, for masking
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
        except (PruneSignal, ReQueueAfterSignal, _Failed):
            raise  # signals, and _dump_outputs' message (it names types, never values)
        except Exception as error:  # noqa: BLE001 - any failure of the node ends it errored
            raise _Failed(_text(error), secrets=raw_secrets, error=error) from None
        except (SystemExit, KeyboardInterrupt, anyio.get_cancelled_exc_class()) as error:
            if anyio.current_effective_deadline() == -math.inf:
                raise  # the worker itself is cancelled (stop, grace period over)
            raise _Failed(_stray_text(name, error), secrets=raw_secrets, error=error) from None


def sendable_prune_data(node_name: str, signal: PruneSignal) -> Any:
    """The signal's data as JSON-ready values, or :class:`_Failed` saying why it cannot be sent.

    Pydantic's reason names the type, never the value (which may be anything the node had).
    """
    try:
        return to_jsonable_python(signal.data)
    except PydanticSerializationError as error:
        raise _Failed(
            f"Node {node_name} raised PruneSignal with data that cannot be sent as JSON "
            f"({error}); give it only JSON-serialisable values"
        ) from None


def _log_outcome(state: ClaimedState, what: str, began: float) -> None:
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "State %s (node %s) %s in %.1f ms",
            state.state_id,
            state.node_name,
            what,
            (time.perf_counter() - began) * 1000,
        )


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


def _text(error: BaseException) -> str:
    """The errored text for ``error`` (contract §8.6 step 7: ``str(e)``), else its type name."""
    try:
        text = str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not strand the state unreported
        text = ""
    return text or type(error).__name__


def _stray_text(name: str, error: BaseException) -> str:
    """The errored text for a ``BaseException`` the node raised without being cancelled."""
    if isinstance(error, anyio.get_cancelled_exc_class()):
        return (
            f"Node {name} raised {type(error).__name__} although nothing cancelled it "
            "(did it await a task that was cancelled?)"
        )
    return f"Node {name} raised {type(error).__name__}: {_text(error)}"


def _describe(error: ValidationError) -> str:
    # include_input=False: the offending values may be secrets; locations and reasons suffice.
    parts = []
    for item in error.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(model)"
        parts.append(f"{location}: {item['msg']}")
    return "; ".join(parts)

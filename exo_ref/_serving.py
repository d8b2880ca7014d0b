"""One serving session of a :class:`~exo_ref.Runtime`: poll, execute, then shut down gracefully.

A claimed state stays QUEUED forever on the server if nobody reports it (contract §3.2), so a
session that stops hands back every state it claimed but will not finish: ``re-enqueue-after``
accepts any status and makes the same state runnable again after a delay (contract §6.2).

Created after registration; :meth:`Serving.run` serves until :meth:`Serving.stop`::

    poller ──stream──▶ `workers` worker tasks ──▶ reports
    stop() ─▶ the poller stops claiming and the pool stops starting, at once
           ─▶ states claimed but not started are handed back (re-enqueue-after 1 ms, §6.2)
           ─▶ running states finish and are reported within `grace_period`
           ─▶ after the grace period: cancel, hand back still-running states, return
    force_stop() ─▶ the same, with the grace period over at once (a second Ctrl-C)

Every state claimed and not reported is handed back: those a hand-back within the grace period
did not reach (it ended first) get a last attempt with the abandoned ones, and so do states
whose report the client was still retrying when the grace period ended.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ._backoff import RandomSource
from ._clock import Clock
from ._config import RuntimeSettings
from ._node import BaseNode
from ._poller import Backlog, Poller
from ._runtime_client import StateManagerClient
from ._wire import ClaimedState
from ._workers import ReportClient, WorkerPool

__all__ = ["ABANDON_HANDBACK_BUDGET", "HANDBACK_DELAY_MS", "Serving"]

logger = logging.getLogger("exo_ref.runtime")

# After the grace period, still-running states are handed back within this extra budget.
ABANDON_HANDBACK_BUDGET = 5.0

# Handed-back states become runnable again after this delay (the endpoint needs > 0, §2.11).
HANDBACK_DELAY_MS = 1


class Deadline:
    """A deadline on an injected clock: every scope opened through it is cancelled when it passes.

    Run :meth:`run` in a task; scopes from :meth:`scope` opened after the deadline start cancelled.
    """

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.passed = False
        self._scopes: list[anyio.CancelScope] = []
        self._on_expiry: list[Callable[[], None]] = []

    def scope(self) -> anyio.CancelScope:
        scope = anyio.CancelScope()
        if self.passed:
            scope.cancel()
        self._scopes.append(scope)
        return scope

    def on_expiry(self, callback: Callable[[], None]) -> None:
        self._on_expiry.append(callback)

    async def run(self) -> None:
        await self.clock.sleep(self.seconds)
        self.expire()

    def expire(self) -> None:
        """Pass the deadline now (idempotent)."""
        if self.passed:
            return
        self.passed = True
        for callback in self._on_expiry:
            callback()
        for scope in self._scopes:
            scope.cancel()


async def hand_back(
    client: ReportClient,
    states: Sequence[ClaimedState],
    why: str,
    *,
    concurrency: int,
    done: set[str] | None = None,
) -> None:
    """Re-enqueue ``states`` after 1 ms, ``concurrency`` at a time; failures are logged.

    The id of each state handed back is added to ``done`` (when given).
    """
    if not states:
        return
    logger.info("Handing back %d state(s) %s", len(states), why)
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(state: ClaimedState) -> None:
        async with limiter:
            try:
                await client.report_re_enqueue_after(state.state_id, HANDBACK_DELAY_MS)
            except Exception:
                logger.exception("Could not hand back state %s", state.state_id)
            else:
                if done is not None:
                    done.add(state.state_id)
                logger.info("State %s (node %s) handed back", state.state_id, state.node_name)

    async with anyio.create_task_group() as tg:
        for state in states:
            tg.start_soon(one, state)


async def within(clock: Clock, seconds: float, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` but give up after ``seconds`` of ``clock`` time."""
    async with anyio.create_task_group() as tg:

        async def timer() -> None:
            await clock.sleep(seconds)
            tg.cancel_scope.cancel()

        tg.start_soon(timer)
        await work()
        tg.cancel_scope.cancel()


class Serving:
    """The poller, the worker pool and the stream between them, for one run of a runtime."""

    def __init__(
        self,
        *,
        client: StateManagerClient,
        settings: RuntimeSettings,
        nodes: Sequence[type[BaseNode]],
        clock: Clock,
        rng: RandomSource,
        poller_class: type[Poller],
        worker_pool_class: type[WorkerPool],
    ) -> None:
        s = settings
        self.client = client
        self.settings = settings
        self.clock = clock
        self.send, self.receive = anyio.create_memory_object_stream[ClaimedState](math.inf)
        self.backlog = Backlog(batch_size=s.batch_size, workers=s.workers)
        self.pool = worker_pool_class(
            client=client,
            nodes=nodes,
            workers=s.workers,
            backlog=self.backlog,
            runtime_label=f"{s.name!r} (namespace {s.namespace!r})",
            clock=clock,
            always_masked=(s.key,),  # masked in every error text (exo_ref._masking)
        )
        self.poller = poller_class(
            client=client,
            node_names=[node.__name__ for node in nodes],
            backlog=self.backlog,
            send=self.send,
            poll_interval=s.poll_interval,
            clock=clock,
            rng=rng,
            before_poll=client.register_again_if_lost,
        )
        self._stop = anyio.Event()
        self._deadline = Deadline(clock, s.grace_period)

    def force_stop(self) -> None:
        """Stop with no grace period: cancel running states now and hand them back.

        Call from the session's event loop thread; idempotent.
        """
        self.stop()
        self._deadline.expire()

    def stop(self) -> None:
        """Stop claiming and starting at once, and let :meth:`run` shut down gracefully.

        Call from the session's event loop thread; idempotent.
        """
        self.poller.stop()
        self.pool.stop_taking()
        self._stop.set()

    async def run(self) -> None:
        """Poll and execute until :meth:`stop`, then shut down gracefully (module doc)."""
        stop = self._stop
        s, pool, poller, client = self.settings, self.pool, self.poller, self.client
        send, receive = self.send, self.receive
        deadline = self._deadline
        handed_back: set[str] = set()
        deadline.on_expiry(
            lambda: logger.warning(
                "Grace period of %.1fs over: cancelling %d running state(s) and %d report(s)",
                s.grace_period,
                len(pool.in_flight),
                len(pool.reporting),
            )
        )
        leftovers: list[ClaimedState] = []
        poll_done = anyio.Event()

        async def run_poller() -> None:
            with deadline.scope():  # a poll in flight may finish, but not past the deadline
                leftovers.extend(await poller.run())
            poll_done.set()

        async def run_pool() -> None:
            with deadline.scope():
                await pool.run(receive)

        with send, receive:
            async with anyio.create_task_group() as outer:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(run_pool)
                    tg.start_soon(run_poller)
                    await stop.wait()
                    # Claiming stopped in stop(); start the grace period.
                    outer.start_soon(deadline.run)
                    await poll_done.wait()
                    leftovers.extend(_drain(receive, self.backlog))
                    send.close()  # idle workers see the end of the stream and exit
                    with deadline.scope():
                        await hand_back(client, leftovers, "claimed but not started",
                                        concurrency=s.workers, done=handed_back)
                # Every worker has exited: their states are finished and reported, or cancelled.
                with deadline.scope():
                    await hand_back(client, pool.returned, "received after the stop",
                                    concurrency=s.workers, done=handed_back)
                outer.cancel_scope.cancel()  # the deadline timer
        missed = [
            state
            for state in (*leftovers, *pool.returned)
            if state.state_id not in handed_back
        ]
        # Cancelled mid-execution, or after it while the report was still being retried.
        abandoned = missed + list(pool.in_flight.values()) + list(pool.reporting.values())
        if abandoned:
            await within(
                self.clock,
                ABANDON_HANDBACK_BUDGET,
                lambda: hand_back(client, abandoned, "still unreported when the grace period ended",
                                  concurrency=s.workers),
            )
        logger.info("Runtime %s stopped", s.name)


def _drain(
    receive: MemoryObjectReceiveStream[ClaimedState], backlog: Backlog
) -> list[ClaimedState]:
    """Take every buffered (claimed, never started) state out of the stream."""
    drained: list[ClaimedState] = []
    while True:
        try:
            drained.append(receive.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            break
    backlog.started(len(drained))
    return drained

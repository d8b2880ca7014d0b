"""One serving session of a :class:`~exo_ref.Runtime`: poll, execute, then shut down gracefully.

Created after registration and run until the runtime's stop event is set::

    poller ──stream──▶ `workers` worker tasks ──▶ reports
    stop ─▶ the poller stops claiming and the pool stops starting (Runtime._begin_shutdown)
         ─▶ states claimed but not started are handed back (re-enqueue-after 1 ms, §6.2)
         ─▶ running states finish and are reported within `grace_period`
         ─▶ after the grace period: cancel, hand back still-running states, return
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from ._backoff import RandomSource
from ._client import StateManagerClient
from ._clock import Clock
from ._config import RuntimeSettings
from ._node import BaseNode
from ._poller import Backlog, Poller
from ._shutdown import Deadline, hand_back, within
from ._wire import ClaimedState
from ._workers import WorkerPool

__all__ = ["ABANDON_HANDBACK_BUDGET", "Serving"]

logger = logging.getLogger("exo_ref.runtime")

# After the grace period, still-running states are handed back within this extra budget.
ABANDON_HANDBACK_BUDGET = 5.0


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
        )
        self.poller = poller_class(
            client=client,
            node_names=[node.__name__ for node in nodes],
            backlog=self.backlog,
            send=self.send,
            poll_interval=s.poll_interval,
            clock=clock,
            rng=rng,
        )

    async def run(self, stop: anyio.Event) -> None:
        """Poll and execute until ``stop`` is set, then shut down gracefully (module doc)."""
        s, pool, poller, client = self.settings, self.pool, self.poller, self.client
        send, receive = self.send, self.receive
        deadline = Deadline(self.clock, s.grace_period)
        deadline.on_expiry(
            lambda: logger.warning(
                "Grace period of %.1fs over: cancelling %d running state(s)",
                s.grace_period,
                len(pool.in_flight),
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
                    # Stop claiming (already done by the runtime); start the grace period.
                    outer.start_soon(deadline.run)
                    await poll_done.wait()
                    leftovers.extend(_drain(receive, self.backlog))
                    send.close()  # idle workers see the end of the stream and exit
                    with deadline.scope():
                        await hand_back(client, leftovers, "claimed but not started",
                                        concurrency=s.workers)
                # Every worker has exited: their states are finished and reported, or cancelled.
                with deadline.scope():
                    await hand_back(client, pool.returned, "received after the stop",
                                    concurrency=s.workers)
                outer.cancel_scope.cancel()  # the deadline timer
        abandoned = list(pool.in_flight.values())
        if abandoned:
            await within(
                self.clock,
                ABANDON_HANDBACK_BUDGET,
                lambda: hand_back(client, abandoned, "cancelled mid-execution",
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

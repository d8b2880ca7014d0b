"""Graceful-shutdown helpers: a clock-driven deadline and handing states back (issue 3).

A claimed state stays QUEUED forever on the server if nobody reports it (contract §3.2), so a
runtime that stops hands back every state it claimed but will not finish: ``re-enqueue-after``
accepts any status and makes the same state runnable again after a delay (contract §6.2).
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import anyio

from ._clock import Clock
from ._wire import ClaimedState
from ._workers import ReportClient

__all__ = ["HANDBACK_DELAY_MS", "Deadline", "hand_back", "run_with_signals", "within"]

logger = logging.getLogger("exo_ref.runtime")

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
        self.passed = True
        for callback in self._on_expiry:
            callback()
        for scope in self._scopes:
            scope.cancel()


async def hand_back(
    client: ReportClient, states: Sequence[ClaimedState], why: str, *, concurrency: int
) -> None:
    """Re-enqueue ``states`` after 1 ms, ``concurrency`` at a time; failures are logged."""
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


async def run_with_signals(
    main: Callable[[], Awaitable[None]],
    *,
    on_first: Callable[[], None],
    on_again: Callable[[], None],
) -> None:
    """Run ``main``; the first SIGINT/SIGTERM calls ``on_first`` (graceful), later ones
    ``on_again`` (forced). Call in the main thread only: only it receives OS signals."""

    async def watch() -> None:
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                received = 0
                async for signum in signals:
                    received += 1
                    if received == 1:
                        logger.warning(
                            "Received %s: finishing running states (send it again to force)",
                            signal.Signals(signum).name,
                        )
                        on_first()
                    else:
                        on_again()
        except NotImplementedError:  # e.g. Windows: no signal receiver, no graceful shutdown
            return

    error: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        try:
            await main()
        except Exception as exc:  # noqa: BLE001 - re-raised below, outside the task group
            error = exc
        finally:
            tg.cancel_scope.cancel()
    if error is not None:
        raise error

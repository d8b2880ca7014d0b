"""The poller: claims runnable states for the workers (contract §2.7, §3.3).

Rules, and why:

* **Hold few claimed states.** A claimed state sits QUEUED on the server until it is reported, and
  the server has no lease (contract §3.2, §8.9 item 7): if the process dies, every
  claimed-but-unstarted state is stranded. So the poller never holds more than ``batch_size`` of
  them and asks only for the free room (``batch_size - unstarted``).
* **Claim only what a worker could take soon.** It polls only while ``unstarted < min(workers,
  max(1, batch_size // 2))``: when every worker already has a successor waiting, claiming more
  would only lengthen the queue of stranded-if-we-crash states without making anything faster;
  and waiting until at most half a batch is left keeps polls large (no one-state polls).
  (Design choice: with fast nodes the queue drains before the next poll returns, so throughput is
  unaffected.)
* **Re-poll at once after a full poll.** A poll that filled its request suggests more work is
  waiting; the poller polls again as soon as there is room (upstream always slept, capping a
  runtime at ``batch_size / poll_interval`` states per second, contract §8.9 item 6).
* **Sleep ``poll_interval`` after a short or empty poll.** The server had nothing more when asked;
  waking early when a worker frees up would busy-poll an empty queue, so it does not.
* **Back off after errors**: exponential with jitter, capped, reset by the next successful poll.
* **Register again when the server lost us.** Before each poll it awaits ``before_poll`` (the
  runtime passes ``StateManagerClient.register_again_if_lost``): after a server restart the nodes
  are registered again before claiming resumes (exo_ref._runtime_client, "Re-registration").
* **Stop at once.** :meth:`Poller.stop` interrupts any wait; a poll already in flight is allowed to
  finish (cancelling it could lose states the server already claimed) and the states it brings are
  returned by :meth:`Poller.run` to be handed back rather than started.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._backoff import Backoff, RandomSource
from ._clock import Clock
from ._errors import ExoRefError
from ._wire import ClaimedState

__all__ = ["Backlog", "EnqueueClient", "Poller", "poll_error_backoff"]

logger = logging.getLogger("exo_ref.poller")

# After poll errors, never wait more than this (unless poll_interval itself is longer).
MAX_POLL_ERROR_BACKOFF = 30.0


def poll_error_backoff(poll_interval: float) -> Backoff:
    """The first error waits between 1 and 2 poll intervals (upstream: exactly 2), doubling to a
    cap of ``max(30 s, 2 * poll_interval)``."""
    return Backoff(
        initial=2 * poll_interval,
        maximum=max(MAX_POLL_ERROR_BACKOFF, 2 * poll_interval),
        multiplier=2.0,
        jitter=0.5,
    )


class EnqueueClient(Protocol):
    """The one call the poller needs (``StateManagerClient.enqueue`` fits)."""

    def enqueue(self, nodes: Sequence[str], batch_size: int) -> Awaitable[list[ClaimedState]]: ...


class Backlog:
    """Counts claimed-but-unstarted states; shared by the poller (adds) and workers (take).

    Workers call :meth:`started` once per state, which is a couple of integer operations unless
    the poller is waiting for room.
    """

    def __init__(self, *, batch_size: int, workers: int) -> None:
        self.batch_size = batch_size
        self.workers = workers
        self.unstarted = 0
        self._room: anyio.Event | None = None

    @property
    def threshold(self) -> int:
        """Poll only while fewer than this many claimed states wait for a worker."""
        return min(self.workers, max(1, self.batch_size // 2))

    def has_room(self) -> bool:
        return self.unstarted < self.threshold

    def free(self) -> int:
        """How many states a poll may ask for without exceeding ``batch_size`` unstarted."""
        return self.batch_size - self.unstarted

    def claimed(self, count: int) -> None:
        self.unstarted += count

    def started(self, count: int = 1) -> None:
        self.unstarted -= count
        if self._room is not None and self.unstarted < self.threshold:
            self._room.set()
            self._room = None

    async def wait_for_room(self) -> None:
        while not self.has_room():
            self._room = anyio.Event()
            await self._room.wait()


class Poller:
    """Polls ``POST /states/enqueue`` and feeds claimed states to the workers.

    Subclass seams (used by conformance mutants): :meth:`may_claim`, :meth:`request_size`,
    :meth:`after_poll`.
    """

    def __init__(
        self,
        *,
        client: EnqueueClient,
        node_names: Sequence[str],
        backlog: Backlog,
        send: MemoryObjectSendStream[ClaimedState],
        poll_interval: float,
        clock: Clock,
        rng: RandomSource,
        error_backoff: Backoff | None = None,
        before_poll: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.client = client
        self.node_names = list(node_names)
        self.backlog = backlog
        self.send = send
        self.poll_interval = poll_interval
        self.clock = clock
        self.rng = rng
        self.error_backoff = error_backoff or poll_error_backoff(poll_interval)
        self.before_poll = before_poll
        self.polls = 0
        self._stopping = False
        self._wait_scope: anyio.CancelScope | None = None

    def stop(self) -> None:
        """Stop claiming: interrupt any wait; an in-flight poll finishes (call in the loop)."""
        self._stopping = True
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    @property
    def stopping(self) -> bool:
        return self._stopping

    # -- seams ----------------------------------------------------------------------------------

    def may_claim(self) -> bool:
        return self.backlog.has_room()

    def request_size(self) -> int:
        return self.backlog.free()

    async def after_poll(self, asked: int, got: int) -> None:
        """Pace the next poll: none after a full poll, ``poll_interval`` after a short one."""
        if got < asked:
            await self.wait(self.clock.sleep(self.poll_interval))

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> list[ClaimedState]:
        """Poll until :meth:`stop`; returns states claimed after the stop (to hand back)."""
        errors = 0
        while not self._stopping:
            if not self.may_claim():
                await self.wait(self.backlog.wait_for_room())
                continue
            if self.before_poll is not None:
                await self.wait(self._before_poll(self.before_poll))
                if self._stopping:
                    break
            asked = self.request_size()
            self.polls += 1
            try:
                states = await self.client.enqueue(self.node_names, asked)
            except ExoRefError as error:
                errors += 1
                delay = self.error_backoff.delay(errors, self.rng)
                logger.warning("Poll failed (%s); polling again in %.2fs", error, delay)
                await self.wait(self.clock.sleep(delay))
                continue
            except Exception:
                errors += 1
                delay = self.error_backoff.delay(errors, self.rng)
                logger.exception("Poll failed unexpectedly; polling again in %.2fs", delay)
                await self.wait(self.clock.sleep(delay))
                continue
            errors = 0
            if self._stopping:
                return states
            got = len(states)
            if got:
                self.backlog.claimed(got)
                for state in states:
                    self.send.send_nowait(state)
                logger.info("Claimed %d state(s)", got)
            else:
                logger.debug("Poll claimed no states")
            await self.after_poll(asked, got)
        return []

    @staticmethod
    async def _before_poll(hook: Callable[[], Awaitable[object]]) -> None:
        await hook()

    async def wait(self, awaitable: Awaitable[None]) -> None:
        """Await ``awaitable`` unless :meth:`stop` is called first."""
        if self._stopping:
            # Close an unawaited coroutine quietly.
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()
            return
        with anyio.CancelScope() as scope:
            self._wait_scope = scope
            try:
                await awaitable
            finally:
                self._wait_scope = None

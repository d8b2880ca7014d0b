"""exo_ref._poller: batching bounds and poll timing."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exo_ref import ManualClock, StateManagerUnavailableError
from exo_ref._poller import Backlog, Poller, poll_error_backoff
from exo_ref._wire import ClaimedState

from .helpers import run_clock


class FakeQueue:
    """An EnqueueClient over a list of states, recording (time, size) of every poll."""

    def __init__(self, clock: ManualClock, count: int = 0, fail: int = 0) -> None:
        self.clock = clock
        self.available = [ClaimedState(state_id=f"s{i}", node_name="N") for i in range(count)]
        self.polls: list[tuple[float, int]] = []
        self.got: list[int] = []
        self.fail = fail
        self.gate: anyio.Event | None = None
        self.entered = anyio.Event()
        self.backlog: Backlog | None = None  # set by make_poller
        self.room: list[int] = []  # the poller's free room when each poll was sent

    async def enqueue(self, nodes: Sequence[str], batch_size: int) -> list[ClaimedState]:
        assert list(nodes) == ["N"]
        self.polls.append((self.clock.now(), batch_size))
        if self.backlog is not None:
            self.room.append(self.backlog.batch_size - self.backlog.unstarted)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise StateManagerUnavailableError("POST /states/enqueue failed: refused")
        taken, self.available = self.available[:batch_size], self.available[batch_size:]
        self.got.append(len(taken))
        return taken


_opened: list[anyio.abc.ObjectStream[ClaimedState] | object] = []


@pytest.fixture(autouse=True)
def _close_streams() -> object:
    yield
    while _opened:
        _opened.pop().close()  # type: ignore[attr-defined]


def make_poller(
    queue: FakeQueue, clock: ManualClock, *, batch_size: int, workers: int, interval: float = 1.0
) -> tuple[Poller, Backlog, anyio.abc.ObjectReceiveStream[ClaimedState]]:
    send, receive = anyio.create_memory_object_stream[ClaimedState](math.inf)
    _opened.extend([send, receive])
    backlog = Backlog(batch_size=batch_size, workers=workers)
    queue.backlog = backlog
    poller = Poller(client=queue, node_names=["N"], backlog=backlog, send=send,
                    poll_interval=interval, clock=clock, rng=random.Random(0))
    return poller, backlog, receive


async def consume(receive: anyio.abc.ObjectReceiveStream[ClaimedState], backlog: Backlog,
                  taken: list[str]) -> None:
    async for item in receive:
        backlog.started()
        taken.append(item.state_id)


async def test_poller_asks_only_for_free_room() -> None:
    clock = ManualClock()
    queue = FakeQueue(clock)
    poller, backlog, _ = make_poller(queue, clock, batch_size=8, workers=8)
    backlog.claimed(3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.run)
        await queue.entered.wait()
        poller.stop()
    assert queue.polls == [(clock.now(), 5)]


async def test_poller_repolls_at_once_after_full_batch_then_waits_interval() -> None:
    clock = ManualClock()
    queue = FakeQueue(clock, count=10)
    poller, backlog, receive = make_poller(queue, clock, batch_size=4, workers=4, interval=2.0)
    taken: list[str] = []
    start = clock.now()
    async with anyio.create_task_group() as tg:
        await run_clock(clock, tg)
        tg.start_soon(consume, receive, backlog, taken)
        tg.start_soon(poller.run)
        await clock.sleep(4.5)
        poller.stop()
        tg.cancel_scope.cancel()
    times = [t - start for t, _ in queue.polls]
    sizes = [size for _, size in queue.polls]
    short = next(i for i, (got, size) in enumerate(zip(queue.got, sizes, strict=False))
                 if got < size)
    # Full polls follow each other without waiting; after the short one, every 2 s.
    assert times[: short + 1] == [0.0] * (short + 1)
    assert times[short + 1 : short + 3] == [2.0, 4.0]
    assert sum(queue.got) == 10
    assert all(size >= 3 for size in sizes)  # polls stay large: wait until half a batch is left
    assert taken == [f"s{i}" for i in range(10)]


async def test_poller_never_holds_more_than_batch_size_unstarted() -> None:
    clock = ManualClock()
    queue = FakeQueue(clock, count=100)
    poller, backlog, receive = make_poller(queue, clock, batch_size=5, workers=2)
    async with anyio.create_task_group() as tg:
        await run_clock(clock, tg)
        tg.start_soon(poller.run)
        await clock.sleep(30.0)  # nobody consumes: it must not claim again
        assert queue.polls == [(queue.polls[0][0], 5)]
        assert backlog.unstarted == 5
        # Starts that leave >= `workers` (2) unstarted: no poll yet.
        for _ in range(3):
            receive.receive_nowait()
            backlog.started()
        await clock.sleep(5.0)
        assert len(queue.polls) == 1
        # Below `workers` unstarted: poll for exactly the free room.
        receive.receive_nowait()
        backlog.started()
        await clock.sleep(0.1)
        assert queue.polls[1][1] == 4
        assert backlog.unstarted == 5
        poller.stop()
        tg.cancel_scope.cancel()


async def test_poller_backs_off_with_growing_capped_spacing_after_errors() -> None:
    clock = ManualClock()
    queue = FakeQueue(clock, fail=12)
    poller, _, _ = make_poller(queue, clock, batch_size=4, workers=4, interval=1.0)
    async with anyio.create_task_group() as tg:
        await run_clock(clock, tg)
        tg.start_soon(poller.run)
        while len(queue.polls) < 15:
            await clock.sleep(1.0)
        poller.stop()
        tg.cancel_scope.cancel()
    times = [t for t, _ in queue.polls]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 1.0 <= gaps[0] <= 2.0  # first error: 1-2 poll intervals
    assert all(later >= earlier for earlier, later in itertools.pairwise(gaps[:4]))
    assert max(gaps[:12]) <= 30.0
    assert gaps[10] >= 15.0  # reached the cap region
    assert gaps[12] == 1.0  # success resets: the empty poll after it waits poll_interval


async def test_stop_interrupts_the_idle_wait_at_once() -> None:
    clock = ManualClock()
    queue = FakeQueue(clock)
    poller, _, _ = make_poller(queue, clock, batch_size=4, workers=4, interval=100.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(poller.run)
        await anyio.wait_all_tasks_blocked()
        assert len(queue.polls) == 1
        before = clock.now()
        poller.stop()
    assert clock.now() == before
    assert len(queue.polls) == 1


async def test_states_claimed_by_a_poll_in_flight_at_stop_are_returned_not_started() -> None:
    clock = ManualClock()
    queue = FakeQueue(clock, count=3)
    queue.gate = anyio.Event()
    poller, backlog, receive = make_poller(queue, clock, batch_size=4, workers=4)
    result: list[ClaimedState] = []

    async def run() -> None:
        result.extend(await poller.run())

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await queue.entered.wait()
        poller.stop()
        queue.gate.set()
    assert [s.state_id for s in result] == ["s0", "s1", "s2"]
    assert backlog.unstarted == 0
    with pytest.raises(anyio.WouldBlock):
        receive.receive_nowait()


def test_poll_error_backoff_starts_at_one_to_two_intervals() -> None:
    backoff = poll_error_backoff(3.0)
    assert backoff.initial == 6.0
    assert backoff.maximum == 30.0
    assert poll_error_backoff(20.0).maximum == 40.0


async def test_empty_polls_log_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock()
    queue = FakeQueue(clock)
    poller, _, _ = make_poller(queue, clock, batch_size=4, workers=4)
    caplog.set_level("DEBUG", logger="exo_ref.poller")
    async with anyio.create_task_group() as tg:
        await run_clock(clock, tg)
        tg.start_soon(poller.run)
        await clock.sleep(3.5)
        poller.stop()
        tg.cancel_scope.cancel()
    records = [r for r in caplog.records if r.name == "exo_ref.poller"]
    assert len(records) == 4
    assert {r.levelname for r in records} == {"DEBUG"}


# trio only: asyncio's wait_all_tasks_blocked (which drives the ManualClock) sleeps 100 ms of real
# time whenever a task is runnable, making this property test ~30x slower there; the poller has
# no backend-specific code and the example-based tests above run on both backends.
@pytest.mark.parametrize("anyio_backend", ["trio"])
@settings(max_examples=15, deadline=None)
@given(
    batch_size=st.integers(1, 8),
    workers=st.integers(1, 6),
    count=st.integers(0, 40),
    work=st.lists(st.sampled_from([0.0, 0.1, 0.5, 2.0]), min_size=1, max_size=5),
)
async def test_poller_bounds_hold_for_any_settings(
    batch_size: int, workers: int, count: int, work: list[float]
) -> None:
    clock = ManualClock()
    queue = FakeQueue(clock, count=count)
    poller, backlog, receive = make_poller(queue, clock, batch_size=batch_size, workers=workers)
    peak = 0
    done: list[str] = []

    async def worker(index: int) -> None:
        nonlocal peak
        async for item in receive:
            peak = max(peak, backlog.unstarted)
            backlog.started()
            await clock.sleep(work[(index + len(done)) % len(work)])
            done.append(item.state_id)

    async with anyio.create_task_group() as tg:
        await run_clock(clock, tg)
        for index in range(workers):
            tg.start_soon(worker, index)
        tg.start_soon(poller.run)
        while len(done) < count:
            await clock.sleep(1.0)
        poller.stop()
        tg.cancel_scope.cancel()
    assert sorted(done) == sorted(f"s{i}" for i in range(count))
    assert peak <= batch_size
    assert all(1 <= size <= batch_size for _, size in queue.polls)
    # It never asks for more than it can hold: each poll asks for at most the free room.
    assert len(queue.room) == len(queue.polls)
    assert all(size <= room for (_, size), room in zip(queue.polls, queue.room, strict=True))

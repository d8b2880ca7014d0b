from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

import anyio
import anyio.lowlevel
import pytest

from exo_ref import ManualClock, SystemClock
from exo_ref._clock import _SETTLE_CHECKPOINTS, hold_time


def test_manual_clock_refuses_to_go_backwards() -> None:
    clock = ManualClock(100.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)


async def test_manual_clock_wakes_sleepers_in_deadline_order() -> None:
    clock = ManualClock(100.0)
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(f"{name}@{clock.now()}")

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "late", 5.0)
        tg.start_soon(sleeper, "early", 2.0)
        await anyio.wait_all_tasks_blocked()
        assert woke == []
        clock.advance(2.0)
        await anyio.wait_all_tasks_blocked()
        assert woke == ["early@102.0"]
        clock.advance(3.0)
    assert woke == ["early@102.0", "late@105.0"]


async def test_auto_advance_jumps_to_next_wakeup_source() -> None:
    clock = ManualClock(0.0, auto_advance=True)
    clock.add_wakeup_source(lambda: 50.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run_auto_advance)
        await clock.sleep(3600.0)
        tg.cancel_scope.cancel()
    # The wake-up source at 50 s was visited on the way to the sleeper's deadline.
    assert clock.now() == 3600.0


async def test_system_clock_sleep_zero_is_a_checkpoint() -> None:
    clock = SystemClock()
    before = clock.now()
    await clock.sleep(0)
    assert clock.now() >= before


async def test_cancelled_sleep_is_not_a_due_time() -> None:
    clock = ManualClock(0.0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.sleep, 500.0)
        await anyio.wait_all_tasks_blocked()
        assert clock.next_due() == 500.0
        tg.cancel_scope.cancel()
    assert clock.next_due() is None


async def test_auto_advance_waits_while_the_clock_is_held() -> None:
    clock = ManualClock(0.0, auto_advance=True)
    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run_auto_advance)
        with clock.hold():
            tg.start_soon(clock.sleep, 10.0)
            # Every task is blocked now, yet time must not move: the clock is held.
            await anyio.wait_all_tasks_blocked()
            await anyio.wait_all_tasks_blocked()
            assert clock.now() == 0.0
        await clock.sleep(10.0)
        assert clock.now() == 10.0
        tg.cancel_scope.cancel()


def test_hold_time_is_a_no_op_for_other_clocks() -> None:
    with hold_time(SystemClock()):
        pass
    clock = ManualClock(0.0)
    with hold_time(clock):
        assert clock._holds == 1
    assert clock._holds == 0


def test_hold_time_passes_through_wrappers_that_define_hold() -> None:
    inner = ManualClock(0.0)

    class Wrapper:
        def now(self) -> float:
            return inner.now()

        async def sleep(self, seconds: float) -> None:
            await inner.sleep(seconds)

        def hold(self) -> AbstractContextManager[None]:
            return inner.hold()

    with hold_time(Wrapper()):
        assert inner._holds == 1
    assert inner._holds == 0


async def test_auto_advance_does_not_jump_while_a_finished_task_wakes_its_parent() -> None:
    # A child that ends in the very loop turn in which the clock looks for idleness leaves its
    # parent's wake-up queued outside any task (asyncio); time must not jump to the sleeper's
    # deadline then. Which turn that is depends on how many checkpoints the child makes, so
    # try every count around the clock's settling loop.
    for checkpoints in range(2 * _SETTLE_CHECKPOINTS + 4):
        clock = ManualClock(0.0, auto_advance=True)

        async def child(n: int = checkpoints) -> None:
            for _ in range(n):
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(clock.run_auto_advance)
            tg.start_soon(clock.sleep, 10.0)
            async with anyio.create_task_group() as inner:
                inner.start_soon(child)
            now = clock.now()  # the parent's first step after the child ended
            tg.cancel_scope.cancel()
        assert now == 0.0, f"time jumped while a child of {checkpoints} checkpoints ended"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # only asyncio runs work outside tasks
@pytest.mark.parametrize("links", [2, 40, 400])
async def test_auto_advance_waits_for_a_chain_of_loop_callbacks(links: int) -> None:
    # Each callback queues the next and the last one wakes a task: every task looks blocked
    # the whole time, yet time must not jump to the sleeper's deadline before the chain ends.
    loop = asyncio.get_running_loop()
    clock = ManualClock(0.0, auto_advance=True)
    done = loop.create_future()
    woken_at: list[float] = []

    def link(left: int) -> None:
        if left:
            loop.call_soon(link, left - 1)
        else:
            done.set_result(None)

    async def waiter() -> None:
        await done
        woken_at.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run_auto_advance)
        tg.start_soon(waiter)
        loop.call_soon(link, links)
        await clock.sleep(10.0)
        tg.cancel_scope.cancel()
    assert woken_at == [0.0]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_auto_advance_is_not_stopped_by_a_callback_that_requeues_itself() -> None:
    # A loop callback that queues itself forever keeps the queue from ever draining; time still
    # moves, after the bounded wait.
    loop = asyncio.get_running_loop()
    clock = ManualClock(0.0, auto_advance=True)
    spinning = True

    def spin() -> None:
        if spinning:
            loop.call_soon(spin)

    async with anyio.create_task_group() as tg:
        tg.start_soon(clock.run_auto_advance)
        loop.call_soon(spin)
        await clock.sleep(10.0)
        spinning = False
        tg.cancel_scope.cancel()
    assert clock.now() == 10.0

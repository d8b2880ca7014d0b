"""Graceful shutdown: stop claiming, finish running states, hand back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
from pydantic import BaseModel

from exo_ref import BaseNode, ManualClock, Runtime
from fake_state_manager import FakeStateManager
from tests.builders import NAMESPACE, graph_node

from .helpers import (
    KEY,
    URI,
    EchoNode,
    Fan,
    Recorder,
    run_clock,
    runtime_for,
    start_graph,
    state,
)

ROOT = Path(__file__).resolve().parents[2]


class Slow(BaseNode):
    """Blocks until released; counts how many started."""

    started = 0
    two_running: anyio.Event
    release: anyio.Event

    class Inputs(BaseModel):
        i: str

    class Outputs(BaseModel):
        i: str

    async def execute(self) -> BaseModel:
        cls = type(self)
        cls.started += 1
        if cls.started == 2:
            cls.two_running.set()
        await cls.release.wait()
        return self.Outputs(i=self.inputs.i)


GRAPH = [
    graph_node("root", "Fan", {"n": "8"}, ["slow"]),
    graph_node("slow", "Slow", {"i": "${{ root.outputs.i }}"}),
]


def reset_slow() -> None:
    Slow.started = 0
    Slow.two_running = anyio.Event()
    Slow.release = anyio.Event()


def statuses(sm: FakeStateManager, run_id: str, name: str) -> list[str]:
    return sorted(s["status"] for s in sm.states(run_id) if s["node_name"] == name)


def reports(sm: FakeStateManager, suffix: str) -> list[Any]:
    return [r for r in sm.requests if r.path.endswith(suffix) and r.status == 200]


async def test_shutdown_mid_batch_finishes_running_and_hands_back_unstarted() -> None:
    reset_slow()
    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        rt = runtime_for(sm, [Fan, Slow], batch_size=6, workers=2)
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            run_id = await start_graph(sm, GRAPH)
            await Slow.two_running.wait()
            await anyio.wait_all_tasks_blocked()
            claimed = statuses(sm, run_id, "Slow").count("QUEUED")
            assert claimed > 2  # some claimed states have not started
            polls_at_stop = len([r for r in sm.requests if r.path.endswith("/enqueue")])
            rt.stop()
            # Released at once: a virtual clock would otherwise jump to the grace deadline.
            Slow.release.set()
        assert not rt.is_running
        assert Slow.started == 2
        final = statuses(sm, run_id, "Slow")
        assert "QUEUED" not in final
        assert final.count("SUCCESS") == 2
        assert final.count("CREATED") == 6  # runnable again for another runtime
        assert len(reports(sm, "/re-enqueue-after")) == claimed - 2
        assert len([r for r in sm.requests if r.path.endswith("/enqueue")]) == polls_at_stop


async def test_grace_period_expiry_cancels_and_hands_back_running_states() -> None:
    reset_slow()
    clock = ManualClock(auto_advance=True)
    async with FakeStateManager(clock=clock) as sm:
        rt = runtime_for(sm, [Fan, Slow], batch_size=2, workers=2, grace_period=5.0)
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            run_id = await start_graph(sm, GRAPH)
            await Slow.two_running.wait()
            stopped_at = clock.now()
            rt.stop()
        # Never released: the grace period (virtual) ended the wait, then they were handed back.
        handed_back = [r.time - stopped_at for r in reports(sm, "/re-enqueue-after")]
        assert sorted(handed_back)[-2:] == [5.0, 5.0]
        final = statuses(sm, run_id, "Slow")
        assert "QUEUED" not in final
        assert final == ["CREATED"] * 8
        assert not reports(sm, "/executed")[1:]  # only Fan's executed report


BLOCKED_RUNTIME = """
import threading

import httpx
from pydantic import BaseModel

from exo_ref import BaseNode, Runtime
from tests.builders import NAMESPACE
from tests.exo_ref.helpers import KEY, URI, Recorder, state


class Block(BaseNode):
    class Inputs(BaseModel):
        text: str

    class Outputs(BaseModel):
        text: str

    def execute(self) -> BaseModel:  # a sync node blocked for good: its thread never returns
        print("node started", flush=True)
        threading.Event().wait()
        return self.Outputs(text=self.inputs.text)


class Printing(Recorder):
    def handle(self, request: httpx.Request) -> httpx.Response:
        if "/state/" in request.url.path:
            print("report", request.url.path.rsplit("/", 2)[-2:], flush=True)
        return super().handle(request)


recorder = Printing(states=[state("s1", "Block", text="x")])
Runtime(
    NAMESPACE, "rt", [Block], state_manager_uri=URI, key=KEY, transport=recorder.transport,
    poll_interval=0.01,
).start()
print("start() returned", flush=True)
"""


def test_a_second_ctrl_c_hands_back_and_exits_130_while_a_sync_node_blocks(
    tmp_path: Path,
) -> None:
    # Issue 10: the process lived on until the blocked thread returned, and exited 0.
    script = tmp_path / "blocked.py"
    script.write_text(BLOCKED_RUNTIME)
    process = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "EXOSPHERE_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []

    def read_until(text: str) -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            seen.append(line)
            if text in line:
                return
        raise AssertionError(f"the runtime ended before printing {text!r}: {''.join(seen)}")

    try:
        read_until("node started")
        process.send_signal(signal.SIGINT)
        read_until("Received SIGINT: finishing running states")
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = "".join(seen) + rest
    assert process.returncode == 130, output
    assert "report ['s1', 're-enqueue-after']" in output  # handed back before exiting
    assert "Exiting with status 130 after a forced stop" in output
    assert "start() returned" not in output


async def test_a_report_still_retried_when_the_grace_period_ends_is_handed_back() -> None:
    # The node finished, but every executed report is answered 503: when the grace period
    # ends the state must not stay QUEUED with nobody left to report it.
    first_attempt = anyio.Event()

    class Busy(Recorder):
        def handle(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/executed"):
                first_attempt.set()
                return httpx.Response(503, json={"detail": "busy"})
            return super().handle(request)

    recorder = Busy(states=[state("s1", text="done")])
    clock = ManualClock(0.0)
    rt = Runtime(NAMESPACE, "rt", [EchoNode], state_manager_uri=URI, key=KEY,
                 transport=recorder.transport, clock=clock, grace_period=5.0)
    async with anyio.create_task_group() as tg:
        await run_clock(clock, tg)
        async with anyio.create_task_group() as serving:
            await serving.start(rt.run)
            await first_attempt.wait()
            rt.stop()
        tg.cancel_scope.cancel()
    assert clock.now() >= 5.0  # the retries went on for the whole grace period
    handed_back = recorder.paths("/re-enqueue-after")
    assert [(c.path.rsplit("/", 2)[-2], c.body) for c in handed_back] == [
        ("s1", {"enqueue_after": 1})
    ]

"""Transport faults end to end: nothing lost, no outcome reported twice
as a different outcome. A wrapping transport injects faults in front of the in-process fake."""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import Any

import anyio
import httpx
import pytest
from pydantic import BaseModel

from exo_ref import BaseNode, ManualClock, PruneSignal
from fake_state_manager import FakeStateManager
from tests.builders import graph_node

from .helpers import Fan, runtime_for, start_graph

REPORTS = ("/executed", "/errored", "/prune", "/re-enqueue-after")


class FaultyTransport(httpx.AsyncBaseTransport):
    """Fails the first attempt of every report and every third poll, cycling through faults.

    ``lost`` and ``timeout`` forward the request first: the server applies it, the client
    never sees the answer (the hardest case for "nothing reported twice").
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, kinds: list[str]) -> None:
        self.inner = inner
        self.kinds = itertools.cycle(kinds)
        self.seen: set[str] = set()
        self.polls = 0
        self.injected: list[tuple[str, str]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        kind = None
        if path.endswith(REPORTS) and path not in self.seen:
            self.seen.add(path)
            kind = next(self.kinds)
        elif path.endswith("/states/enqueue"):
            self.polls += 1
            if self.polls % 3 == 0:
                kind = "reset-before"  # a poll must never lose claimed states
        if kind is not None:
            self.injected.append((kind, path))
        if kind == "reset-before":
            raise httpx.ConnectError("connection refused")
        if kind == "503":
            return httpx.Response(503, json={"detail": "overloaded"})
        response = await self.inner.handle_async_request(request)
        if kind == "lost":
            await response.aread()
            raise httpx.ReadError("connection reset after the server answered")
        if kind == "timeout":
            await response.aread()
            raise httpx.ReadTimeout("no answer in time")
        return response


class Mixed(BaseNode):
    """Executes, errors or prunes depending on its input."""

    class Inputs(BaseModel):
        i: str

    class Outputs(BaseModel):
        i: str

    async def execute(self) -> BaseModel:
        match int(self.inputs.i) % 3:
            case 0:
                return self.Outputs(i=self.inputs.i)
            case 1:
                raise ValueError(f"failure {self.inputs.i}")
            case _:
                raise PruneSignal({"i": self.inputs.i})


GRAPH = [graph_node("root", "Fan", {"n": "12"}, ["mixed"]),
         graph_node("mixed", "Mixed", {"i": "${{ root.outputs.i }}"})]


@pytest.mark.parametrize(
    "kinds",
    [
        pytest.param(["lost"], id="lost-responses"),
        pytest.param(["timeout"], id="timeouts"),
        pytest.param(["lost", "503", "timeout", "reset-before"], id="mixed-with-503s-and-resets"),
    ],
)
async def test_faults_lose_nothing_and_never_change_an_outcome(kinds: list[str]) -> None:
    async with FakeStateManager(clock=ManualClock(auto_advance=True)) as sm:
        transport = FaultyTransport(sm.transport, kinds)
        rt = runtime_for(sm, [Fan, Mixed], transport=transport, batch_size=4, workers=3)
        async with anyio.create_task_group() as tg:
            await tg.start(rt.run)
            run_id = await start_graph(sm, GRAPH)
            summary = await sm.wait_for_run(run_id)
            rt.stop()
    assert transport.injected
    assert summary["pending_count"] == 0
    # Per input: i % 3 == 0 executed, 1 errored (retried by the default policy, §5), 2 pruned.
    by_input: dict[int, list[str]] = defaultdict(list)
    for item in sm.states(run_id):
        if item["node_name"] == "Mixed":
            by_input[int(item["inputs"]["i"])].append(item["status"])
    assert sorted(by_input) == list(range(12))
    for i, found in by_input.items():
        if i % 3 == 0:
            assert found == ["SUCCESS"], (i, found)
        elif i % 3 == 2:
            assert found == ["PRUNED"], (i, found)
        else:
            assert sorted(set(found)) in (["ERRORED"], ["ERRORED", "RETRY_CREATED"]), (i, found)
            assert found.count("ERRORED") == 1, (i, found)
    # Every state got reports to one endpoint only, applied (200) exactly once.
    endpoints: dict[str, set[str]] = defaultdict(set)
    applied: dict[str, int] = defaultdict(int)
    for request in sm.requests:
        if request.path.endswith(REPORTS):
            state_id, endpoint = request.path.split("/")[-2:]
            endpoints[state_id].add(endpoint)
            applied[state_id] += request.status == 200
    assert all(len(kinds_) == 1 for kinds_ in endpoints.values()), endpoints
    assert set(applied.values()) == {1}
    errored_bodies: list[Any] = [r.body for r in sm.requests
                                 if r.path.endswith("/errored") and r.status == 200]
    assert {b["error"] for b in errored_bodies} == {f"failure {i}" for i in range(12) if i % 3 == 1}

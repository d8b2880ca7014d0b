"""``FakeStateManager(retain_runs=..., retain_hours=...)`` over HTTP, with a real runtime (#10).

The earliest-finished runs beyond the bound disappear from every read (runs list, run graph,
node details) and their states are unknown (404) afterwards; PENDING runs stay. With
``EXO_FAKE_STORE=sqlite`` the test backend also checks that the drops reached the file.
"""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel

from exo_ref import BaseNode, Runtime
from fake_state_manager import FakeStateManager, ManualClock
from tests.builders import graph_node

from .http_support import KEY, PREFIX, START, claim, ok, registration, setup_graph, trigger


class Echo(BaseNode):
    class Inputs(BaseModel):
        x: str

    class Outputs(BaseModel):
        y: str

    async def execute(self) -> BaseModel:
        return self.Outputs(y=self.inputs.x)


async def _runs(client: Any) -> list[str]:
    body = await ok(client.get(f"{PREFIX}/runs/1/0"))
    return [run["run_id"] for run in body["runs"]]


async def test_only_the_latest_finished_runs_are_kept_and_pending_ones_stay() -> None:
    clock = ManualClock(START, auto_advance=True)
    sm = FakeStateManager(api_key=KEY, clock=clock, seed=0, retain_runs=3, retain_hours=24.0)
    async with sm, sm.client() as client:
        await setup_graph(
            client,
            [registration("Echo", ("x",), ("y",)), registration("Held", ("x",), ("y",))],
            [graph_node("e", "Echo", inputs={"x": "hi"})],
        )
        await setup_graph(
            client, [registration("Held", ("x",), ("y",))],
            [graph_node("h", "Held", inputs={"x": "hi"})], graph="held",
        )
        stuck = await trigger(client, "held")
        (held,) = await claim(client, "Held")  # nobody reports it: PENDING for good
        runtime = Runtime("ns", "rt", [Echo], sm.uri, sm.api_key, transport=sm.transport,
                          clock=clock, poll_interval=1.0)
        finished = []
        async with anyio.create_task_group() as tg:
            await tg.start(runtime.run)
            for _ in range(6):
                run_id = await trigger(client)
                assert (await sm.wait_for_run(run_id, timeout=20))["status"] == "SUCCESS"
                finished.append(run_id)
            runtime.stop()
        listed = await _runs(client)  # newest first
        assert listed == [*finished[:2:-1], stuck]
        sm.engine.check_invariants()
        graph = await ok(client.get(f"{PREFIX}/states/run/{finished[0]}/graph"))
        assert graph["node_count"] == 0
        # The stuck run is older than every other, yet kept: it is not finished.
        summary = sm.run_summary(stuck)
        assert summary["status"] == "PENDING"
        # A day later every finished run has gone; the PENDING one is still there.
        await clock.sleep(25 * 3600.0)
        assert await _runs(client) == [stuck]
        await ok(client.post(f"{PREFIX}/state/{held['state_id']}/executed",
                             json={"outputs": [{"y": "done"}]}))
        assert sm.run_summary(stuck)["status"] == "SUCCESS"
        sm.engine.check_invariants()

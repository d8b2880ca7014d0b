"""Secrets and the API key never appear in logs or error messages.

A whole run is logged at DEBUG (every logger: exo_ref, httpx, httpcore...) while nodes read a
graph secret, one node fails, and clients with a wrong key are refused. (A secret that does not
validate is covered in test_workers.py: the fake refuses a graph lacking a declared secret.)
"""

from __future__ import annotations

import logging

import anyio
import pytest
from pydantic import BaseModel

from exo_ref import (
    AuthenticationError,
    BaseNode,
    GraphNodeModel,
    ManualClock,
    StateManager,
)
from fake_state_manager import FakeStateManager
from tests.builders import NAMESPACE

from .helpers import runtime_for

KEY = "right-key-7f3a9c-never-logged"
WRONG_KEY = "wrong-key-b81d44-never-logged"
SECRET = "graph-secret-5e2c11-never-logged"


class UsesToken(BaseNode):
    """Succeeds on "ok", fails on anything else (the message must not carry the secret)."""

    class Inputs(BaseModel):
        mode: str

    class Outputs(BaseModel):
        length: str

    class Secrets(BaseModel):
        token: str

    async def execute(self) -> Outputs:
        if self.inputs.mode != "ok":
            raise ValueError(f"mode {self.inputs.mode!r} refused")
        return self.Outputs(length=str(len(self.secrets.token)))


def graph() -> list[GraphNodeModel]:
    return [
        GraphNodeModel(
            node_name="UsesToken",
            namespace=NAMESPACE,
            identifier="a",
            inputs={"mode": "ok"},
            next_nodes=["b"],
        ),
        GraphNodeModel(
            node_name="UsesToken", namespace=NAMESPACE, identifier="b", inputs={"mode": "fail"}
        ),
    ]


def assert_absent(text: str, where: str) -> None:
    for value in (KEY, WRONG_KEY, SECRET):
        assert value not in text, f"{value!r} leaked into {where}"


async def test_a_run_with_secrets_and_wrong_keys_logs_neither(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # the root logger: every library's records
    clock = ManualClock(auto_advance=True)
    async with FakeStateManager(api_key=KEY, clock=clock) as fake:
        rt = runtime_for(fake, [UsesToken])
        async with (
            StateManager(NAMESPACE, fake.uri, KEY, transport=fake.transport, clock=clock) as sm,
            anyio.create_task_group() as tg,
        ):
            await tg.start(rt.run)
            await sm.upsert_graph("g", graph(), secrets={"token": SECRET}, polling_interval=0.1)
            run = await sm.trigger("g")
            summary = await sm.wait_for_run(run["run_id"], poll_interval=0.1)
            rt.stop()
        # A runtime and a client holding a wrong key are refused; neither message shows it.
        wrong = runtime_for(fake, [UsesToken], key=WRONG_KEY)
        with pytest.raises(AuthenticationError) as refused_runtime:
            await wrong.run()
        wrong_sm = StateManager(
            NAMESPACE, fake.uri, WRONG_KEY, transport=fake.transport, clock=clock
        )
        with pytest.raises(AuthenticationError) as refused_client:
            await wrong_sm.trigger("g")
        states = fake.states(run["run_id"])
        errored = [r.body["error"] for r in fake.requests if r.path.endswith("/errored")]
    assert summary["status"] == "FAILED"  # b failed (and its retries)
    assert {s["status"] for s in states} >= {"SUCCESS", "ERRORED"}
    # The secret was served: the runtime fetched it and the node used it.
    served = [s["outputs"] for s in states if s["identifier"] == "a"]
    assert served == [{"length": str(len(SECRET))}]
    assert any("refused" in e for e in errored)
    assert caplog.records  # DEBUG capture did record the run
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for record in caplog.records:
        if record.name.startswith("fake_state_manager"):
            continue  # the server side is not the SDK's to keep quiet
        assert_absent(record.getMessage(), f"log record {record.name}")
        if record.exc_text:
            assert_absent(record.exc_text, f"traceback of {record.name}")
    assert_absent(caplog.text, "the captured log")
    for error in errored:
        assert_absent(error, "an errored report")
    for exc in (refused_runtime.value, refused_client.value):
        assert_absent(str(exc), "an error message")
        assert_absent(repr(exc), "an error repr")
    assert_absent(repr(rt) + repr(rt.settings) + repr(sm), "a repr")

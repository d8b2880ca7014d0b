"""Secrets and the API key never appear in logs or error messages.

A whole run is logged at DEBUG (every logger: exo_ref, httpx, httpcore...) while nodes read a
graph secret, one node fails, and clients with a wrong key are refused. Then nodes quote their
secret (and the key) in exceptions, chained tracebacks and pydantic errors, and secrets fail
validation: the stored errors and the log show ``***`` (exo_ref._masking). (A missing secret is
covered in test_workers.py: the fake refuses a graph lacking a declared secret.)
"""

from __future__ import annotations

import logging

import anyio
import pytest
from pydantic import BaseModel, Field, field_validator

from exo_ref import (
    AuthenticationError,
    BaseNode,
    GraphNodeModel,
    ManualClock,
    RetryPolicyModel,
    StateManager,
)
from exo_ref._masking import RUNTIME_LOGGERS, MaskingFilter
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


# -- masking (exo_ref._masking): what a node's own error text quotes is masked ----------------

LONG_SECRET = "login-token-3b9d51f0a7c2e8d4-6f1a0c9e2b7d3f85-never-logged"


class _Probe(BaseModel):
    n: int


class LeaksToken(BaseNode):
    """Fails, quoting its secret (or the API key, as if read from the environment) in the error."""

    class Inputs(BaseModel):
        mode: str

    class Secrets(BaseModel):
        token: str

    async def execute(self) -> None:
        token = self.secrets.token
        if self.inputs.mode == "raise":
            raise ValueError(f"login failed with {token}")
        if self.inputs.mode == "repr-chained":
            raise RuntimeError(f"no session for {token!r}") from KeyError(token)
        if self.inputs.mode == "pydantic":
            _Probe.model_validate({"n": token})  # shows input_value='<head>...<tail>'
        raise PermissionError(f"key {KEY} refused for {token}")


class LeaksTokenSync(BaseNode):
    """The same from a plain ``def`` (run in a worker thread)."""

    class Inputs(BaseModel):
        mode: str

    class Secrets(BaseModel):
        token: str

    def execute(self) -> None:
        raise ValueError(f"sync login failed with {self.secrets.token}")


class StrictToken(BaseNode):
    """Its secret fails validation with a message that quotes the value."""

    class Inputs(BaseModel):
        mode: str

    class Secrets(BaseModel):
        token: str

        @field_validator("token")
        @classmethod
        def _known(cls, value: str) -> str:
            raise ValueError(f"token {value!r} is not a known token")

    async def execute(self) -> None:
        raise AssertionError("never runs: its secret does not validate")


class ShortToken(BaseNode):
    """Its secret fails a length constraint (pydantic would show it as input_value)."""

    class Inputs(BaseModel):
        mode: str

    class Secrets(BaseModel):
        token: str = Field(max_length=8)

    async def execute(self) -> None:
        raise AssertionError("never runs: its secret does not validate")


LEAKS = {
    "raise": "LeaksToken",
    "repr-chained": "LeaksToken",
    "pydantic": "LeaksToken",
    "key": "LeaksToken",
    "sync": "LeaksTokenSync",
    "validator": "StrictToken",
    "constraint": "ShortToken",
}


def windows(value: str, size: int = 10) -> list[str]:
    """Every ``size``-character piece of ``value``: none may survive masking."""
    return [value[i : i + size] for i in range(len(value) - size + 1)]


def assert_no_piece(text: str, where: str) -> None:
    for value in (LONG_SECRET, KEY):
        for piece in windows(value):
            assert piece not in text, f"{piece!r} of {value!r} leaked into {where}"


async def test_secrets_and_the_key_are_masked_in_errors_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock(auto_advance=True)
    nodes: list[type[BaseNode]] = [LeaksToken, LeaksTokenSync, StrictToken, ShortToken]
    async with FakeStateManager(api_key=KEY, clock=clock) as fake:
        rt = runtime_for(fake, nodes)
        async with (
            StateManager(NAMESPACE, fake.uri, KEY, transport=fake.transport, clock=clock) as sm,
            anyio.create_task_group() as tg,
        ):
            await tg.start(rt.run)
            runs: dict[str, str] = {}
            for mode, node in LEAKS.items():
                template = GraphNodeModel(
                    node_name=node, namespace=NAMESPACE, identifier="a", inputs={"mode": mode}
                )
                await sm.upsert_graph(
                    mode, [template], secrets={"token": LONG_SECRET}, polling_interval=0.1,
                    retry_policy=RetryPolicyModel(max_retries=0),
                )
                runs[mode] = (await sm.trigger(mode))["run_id"]
            for run_id in runs.values():
                await sm.wait_for_run(run_id, poll_interval=0.1)
            rt.stop()
        errors = {mode: [s["error"] for s in fake.states(run_id)] for mode, run_id in runs.items()}
        reported = [r.body["error"] for r in fake.requests if r.path.endswith("/errored")]
    # Each state errored with a masked text: readable, `***` where the value was.
    expected = {
        "raise": "login failed with ***",
        "repr-chained": "no session for '***'",
        "pydantic": "input_value='***...***'",
        "key": "key *** refused for ***",
        "sync": "sync login failed with ***",
        "validator": "Invalid secrets for node StrictToken: token: Value error, token '***' is not",
        "constraint": "Invalid secrets for node ShortToken: token: String should have at most 8",
    }
    for mode, fragment in expected.items():
        (error,) = errors[mode]
        assert fragment in error, (mode, error)
        assert_no_piece(error, f"the stored error of {mode}")
    assert len(reported) == len(LEAKS)
    for error in reported:
        assert_no_piece(error, "an errored report")
    # The log shows what failed and the traceback, masked; no record carries an exception a
    # handler could render unmasked.
    with_traceback = logging.Formatter("%(name)s %(levelname)s %(message)s")
    sdk = [r for r in caplog.records if not r.name.startswith("fake_state_manager")]
    failures = [r for r in sdk if r.name == "exo_ref.workers"]
    assert len(failures) == len(LEAKS)
    for record in sdk:
        assert record.exc_info is None
        assert_no_piece(with_traceback.format(record), f"log record {record.name}")
    raised = [with_traceback.format(r) for r in failures if "Traceback" in r.getMessage()]
    assert len(raised) == 5  # every mode but the two validation failures
    assert any("KeyError: '***'" in text and "direct cause" in text for text in raised)
    assert_no_piece(caplog.text, "the captured log")
    # The run's log filters are gone with the run.
    for name in RUNTIME_LOGGERS:
        assert not any(isinstance(f, MaskingFilter) for f in logging.getLogger(name).filters)

"""The runtime process of test_restart.py (``python -m tests.fake_state_manager.restart_runtime``).

Arguments: ``LOG GATE``. Graph ``fan -> work -> leaf``: ``Fan`` fans out ``n`` items, ``Work``
passes each on, ``Leaf`` reads its secret. Every execution appends one line to ``LOG`` (one
``write`` on an ``O_APPEND`` file, so lines never interleave). ``Work`` for item :data:`HELD`
first appends ``held <i>`` and then blocks reading the FIFO ``GATE`` until the test writes to
it: the test kills the state manager while that state is claimed and executing, and lets it
finish after the restart.

URI and key come from ``EXOSPHERE_STATE_MANAGER_URI`` / ``EXOSPHERE_API_KEY``.
"""

from __future__ import annotations

import os
import sys

import anyio
from pydantic import BaseModel

from exo_ref import BaseNode, Runtime
from tests.exo_ref import helpers

NAMESPACE = "restart"
HELD = "3"


def record(line: str) -> None:
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


def wait_for_gate() -> None:
    with open(GATE, "rb") as fifo:  # blocks until the test opens the FIFO for writing
        fifo.read()


class Fan(helpers.Fan):
    async def execute(self) -> list[helpers.Fan.Outputs]:
        record("fan")
        return await super().execute()


class Work(BaseNode):
    class Inputs(BaseModel):
        i: str

    class Outputs(BaseModel):
        i: str

    async def execute(self) -> Outputs:
        if self.inputs.i == HELD:
            record(f"held {self.inputs.i}")
            await anyio.to_thread.run_sync(wait_for_gate)
        record(f"work {self.inputs.i}")
        return self.Outputs(i=self.inputs.i)


class Leaf(BaseNode):
    class Inputs(BaseModel):
        i: str

    class Outputs(BaseModel):
        pass

    class Secrets(BaseModel):
        token: str

    async def execute(self) -> Outputs:
        record(f"leaf {self.inputs.i} {self.secrets.token}")
        return self.Outputs()


if __name__ == "__main__":
    LOG, GATE = sys.argv[1], sys.argv[2]
    Runtime(
        namespace=NAMESPACE,
        name="restart-runtime",
        nodes=[Fan, Work, Leaf],
        poll_interval=0.05,
        workers=4,
    ).start()

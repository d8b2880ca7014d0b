"""Node classes written against the upstream ``exospherehost.BaseNode`` (contract §8.1).

Upstream nodes take no constructor arguments, read ``self.inputs`` / ``self.secrets`` and declare
every field as exactly ``str`` (contract §8.2). Behaviour that must differ per attempt (retries,
re-enqueue) is keyed by an input value in the shared ``ATTEMPTS`` counter, because the runtime
creates a new node instance for every state.
"""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta

from exospherehost import BaseNode, PruneSignal, ReQueueAfterSignal
from pydantic import BaseModel

from tests.upstream._support import AttemptCounter

ATTEMPTS = AttemptCounter()
#: Monotonic execution times per key, for the re-enqueue-after delay check.
EXECUTION_TIMES: dict[str, list[float]] = {}


class FanOutNode(BaseNode):
    """The integration test's Node1 (contract §10): ten outputs from one state."""

    class Inputs(BaseModel):
        message: str

    class Outputs(BaseModel):
        count: str

    async def execute(self) -> list[FanOutNode.Outputs]:
        return [self.Outputs(count=str(i)) for i in range(10)]


class Shout(BaseNode):
    class Inputs(BaseModel):
        text: str

    class Outputs(BaseModel):
        loud: str

    async def execute(self) -> Shout.Outputs:
        return self.Outputs(loud=self.inputs.text.upper())


class Wrap(BaseNode):
    class Inputs(BaseModel):
        left: str
        right: str

    class Outputs(BaseModel):
        joined: str

    async def execute(self) -> Wrap.Outputs:
        inputs = self.inputs
        return self.Outputs(joined=f"{inputs.left}|{inputs.right}")


class Echo(BaseNode):
    class Inputs(BaseModel):
        value: str

    class Outputs(BaseModel):
        value: str

    async def execute(self) -> Echo.Outputs:
        return self.Outputs(value=self.inputs.value)


class UsesSecret(BaseNode):
    """Proves the secret arrived without echoing it: outputs its SHA-256."""

    class Inputs(BaseModel):
        label: str

    class Outputs(BaseModel):
        digest: str

    class Secrets(BaseModel):
        token: str

    async def execute(self) -> UsesSecret.Outputs:
        token = self.secrets.token
        return self.Outputs(digest=hashlib.sha256(token.encode()).hexdigest())


class Flaky(BaseNode):
    """Fails its first ``failures`` attempts for ``key``, then succeeds."""

    class Inputs(BaseModel):
        key: str
        failures: str

    class Outputs(BaseModel):
        attempts: str

    async def execute(self) -> Flaky.Outputs:
        inputs = self.inputs
        attempt = ATTEMPTS.next(inputs.key)
        if attempt <= int(inputs.failures):
            raise RuntimeError(f"attempt {attempt} failed")
        return self.Outputs(attempts=str(attempt))


class Gate(BaseNode):
    """Prunes its branch when the verdict is "stop" (contract §6.1)."""

    class Inputs(BaseModel):
        verdict: str

    class Outputs(BaseModel):
        verdict: str

    async def execute(self) -> Gate.Outputs:
        verdict = self.inputs.verdict
        if verdict == "stop":
            raise PruneSignal({"reason": "told to stop"})
        return self.Outputs(verdict=verdict)


class Later(BaseNode):
    """Asks to be re-enqueued once after ``delay_ms`` (contract §6.2), then succeeds."""

    class Inputs(BaseModel):
        key: str
        delay_ms: str

    class Outputs(BaseModel):
        attempts: str

    async def execute(self) -> Later.Outputs:
        inputs = self.inputs
        attempt = ATTEMPTS.next(inputs.key)
        EXECUTION_TIMES.setdefault(inputs.key, []).append(time.monotonic())
        if attempt == 1:
            raise ReQueueAfterSignal(timedelta(milliseconds=int(inputs.delay_ms)))
        return self.Outputs(attempts=str(attempt))


class Source(BaseNode):
    class Inputs(BaseModel):
        topic: str

    class Outputs(BaseModel):
        tag: str

    async def execute(self) -> Source.Outputs:
        return self.Outputs(tag=f"tag-{self.inputs.topic}")


class Splitter(BaseNode):
    """Fans out into three parts (contract §3.4)."""

    class Inputs(BaseModel):
        tag: str

    class Outputs(BaseModel):
        part: str

    async def execute(self) -> list[Splitter.Outputs]:
        return [self.Outputs(part=f"{self.inputs.tag}-{i}") for i in range(3)]


class Worker(BaseNode):
    class Inputs(BaseModel):
        part: str

    class Outputs(BaseModel):
        done: str

    async def execute(self) -> Worker.Outputs:
        ATTEMPTS.next(f"worker:{self.inputs.part}")
        return self.Outputs(done=f"{self.inputs.part}!")


class Merger(BaseNode):
    """The fan-in: ``unites`` the source, so it runs once all its descendants succeeded."""

    class Inputs(BaseModel):
        tag: str

    class Outputs(BaseModel):
        summary: str

    async def execute(self) -> Merger.Outputs:
        ATTEMPTS.next(f"merger:{self.inputs.tag}")
        return self.Outputs(summary=f"merged {self.inputs.tag}")

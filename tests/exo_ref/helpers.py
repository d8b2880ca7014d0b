"""Shared helpers for the exo_ref tests: nodes, a recording fake handler, graph set-up."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
from pydantic import BaseModel

from exo_ref import Backoff, BaseNode, ManualClock, Runtime
from exo_ref._config import RuntimeSettings
from exo_ref._runtime_client import StateManagerClient
from tests.builders import NAMESPACE

URI = "http://sm.test"
KEY = "test-secret-key-123"


class EchoNode(BaseNode):
    class Inputs(BaseModel):
        text: str

    class Outputs(BaseModel):
        text: str

    async def execute(self) -> BaseModel:
        return self.Outputs(text=self.inputs.text)


class Fan(BaseNode):
    """Fans out: one output per ``range(int(n))`` (so one downstream state each, §3.4)."""

    class Inputs(BaseModel):
        n: str

    class Outputs(BaseModel):
        i: str

    async def execute(self) -> list[Outputs]:
        return [self.Outputs(i=str(k)) for k in range(int(self.inputs.n))]


@dataclass
class Call:
    method: str
    path: str
    body: Any
    headers: httpx.Headers


Handler = Callable[[Call], httpx.Response | Exception | None]


@dataclass
class Recorder:
    """An ``httpx.MockTransport`` handler recording every request.

    ``script`` maps a path suffix to a list of planned answers (a Response, an exception to
    raise, or None for the default); when a list runs out, ``default`` answers.
    """

    script: dict[str, list[httpx.Response | Exception | None]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    states: list[dict[str, Any]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        path = request.url.path
        call = Call(request.method, path, body, request.headers)
        self.calls.append(call)
        for suffix, plan in self.script.items():
            if path.endswith(suffix) and plan:
                answer = plan.pop(0)
                if isinstance(answer, Exception):
                    raise answer
                if answer is not None:
                    return answer
                break
        return self.default(call)

    def default(self, call: Call) -> httpx.Response:
        if call.path.endswith("/states/enqueue"):
            size = call.body["batch_size"]
            taken, self.states[:] = self.states[:size], self.states[size:]
            return httpx.Response(
                200,
                json={
                    "count": len(taken),
                    "namespace": NAMESPACE,
                    "status": "QUEUED",
                    "states": taken,
                },
            )
        if call.path.endswith("/nodes/"):
            return httpx.Response(200, json={"runtime_name": "rt", "registered_nodes": []})
        if call.path.endswith("/secrets"):
            return httpx.Response(200, json={"secrets": {}})
        return httpx.Response(200, json={"status": "OK"})

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def paths(self, suffix: str) -> list[Call]:
        return [c for c in self.calls if c.path.endswith(suffix)]


def state(state_id: str, node: str = "EchoNode", **inputs: str) -> dict[str, Any]:
    return {
        "state_id": state_id,
        "node_name": node,
        "identifier": "id",
        "inputs": inputs,
        "created_at": "2026-01-01T00:00:00",
    }


def run_item(run_id: str, status: str, total: int = 1) -> dict[str, Any]:
    """One run of a runs page (contract §7.1): one state succeeded, ``total`` in all."""
    return {
        "run_id": run_id,
        "graph_name": "g",
        "status": status,
        "success_count": 1,
        "pending_count": 0,
        "errored_count": 0,
        "retried_count": 0,
        "total_count": total,
        "created_at": "2026-01-01T00:00:00",
    }


def make_client(
    recorder: Recorder, clock: ManualClock, backoff: Backoff | None = None
) -> StateManagerClient:
    return StateManagerClient(
        client_settings(),
        transport=recorder.transport,
        clock=clock,
        rng=random.Random(0),
        backoff=backoff or Backoff(),
    )


def client_settings(uri: str = URI, timeout: httpx.Timeout | None = None) -> RuntimeSettings:
    """What a :class:`StateManagerClient` reads: the test runtime's uri, namespace and key."""
    return RuntimeSettings(
        namespace=NAMESPACE,
        name="rt",
        state_manager_uri=uri,
        key=KEY,
        timeout=timeout or httpx.Timeout(5.0),
    )


async def run_clock(clock: ManualClock, tg: anyio.abc.TaskGroup) -> None:
    """Start auto-advancing ``clock`` in ``tg`` (cancel ``tg`` to end it)."""
    clock.auto_advance = True
    tg.start_soon(clock.run_auto_advance)


def json_response(status: int, body: Any, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


async def start_graph(
    sm: Any, nodes: list[dict[str, Any]], *, graph: str = "g", inputs: dict[str, str] | None = None
) -> str:
    """Upsert a graph on the fake, wait until it is VALID, trigger it; returns the run id."""
    async with sm.client() as client:
        response = await client.put(
            f"/v0/namespace/{NAMESPACE}/graph/{graph}",
            json={"secrets": {"api_key": "k"}, "nodes": nodes},
        )
        assert response.status_code == 201, response.text
        for _ in range(100):
            body = (await client.get(f"/v0/namespace/{NAMESPACE}/graph/{graph}")).json()
            if body["validation_status"] != "PENDING":
                break
            await sm.clock.sleep(0.05)
        assert body["validation_status"] == "VALID", body
        response = await client.post(
            f"/v0/namespace/{NAMESPACE}/graph/{graph}/trigger", json={"inputs": inputs or {}}
        )
        assert response.status_code == 200, response.text
        return str(response.json()["run_id"])


def runtime_for(sm: Any, nodes: list[type[BaseNode]], **kwargs: Any) -> Runtime:
    """A runtime served by the in-process fake ``sm`` on its clock; ``kwargs`` override."""
    options: dict[str, Any] = {
        "state_manager_uri": sm.uri,
        "key": sm.api_key,
        "transport": sm.transport,
        "clock": sm.clock,
        **kwargs,
    }
    return Runtime(NAMESPACE, "rt", nodes, **options)


def recorded_runtime(recorder: Recorder, **kwargs: Any) -> Runtime:
    """A ``Fan`` runtime whose every request ``recorder`` answers; ``kwargs`` add settings."""
    return Runtime(
        NAMESPACE,
        "rt",
        [Fan],
        state_manager_uri=URI,
        key=KEY,
        transport=recorder.transport,
        **kwargs,
    )


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_block(test_file: str) -> str:
    """The README's Python block marked as run by ``test_file`` (its path from the root)."""
    return marked_block(README, test_file)


def marked_block(doc: Path, test_file: str) -> str:
    """The Python block of ``doc`` that a ``<!-- {test_file} runs the next code block -->``
    comment marks: the docs say what runs, and the test runs exactly that text."""
    marker = f"<!-- {test_file} runs the next code block -->"
    text = doc.read_text(encoding="utf-8")
    assert marker in text, f"{doc.name} lost the marked code block {test_file} runs"
    after = text.split(marker, 1)[1]
    opening = "```python\n"
    assert after.lstrip("\n").startswith(opening)
    return after.split(opening, 1)[1].split("\n```", 1)[0]

"""Shared helpers for the HTTP-level tests of the fake state manager (routes, app, fuzz)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from fake_state_manager import FakeStateManager, ManualClock

from .engine_helpers import REGISTERED_NODE_KEYS, START, START_MS, STATUS_ORDER, schema

__all__ = [
    "KEY",
    "PREFIX",
    "REGISTERED_NODE_KEYS",
    "START",
    "START_MS",
    "STATUS_ORDER",
    "claim",
    "executed",
    "ok",
    "registration",
    "running",
    "setup_graph",
    "string_schema",
    "trigger",
]

KEY = "test-key"
PREFIX = "/v0/namespace/ns"


def string_schema(*fields: str) -> dict[str, Any]:
    """A pydantic-style JSON Schema whose fields are all ``str`` (contract §4.4)."""
    return schema(fields)


def registration(
    name: str,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
    secrets: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "name": name,
        "inputs_schema": string_schema(*inputs),
        "outputs_schema": string_schema(*outputs),
        "secrets": list(secrets),
    }


@asynccontextmanager
async def running(**kwargs: Any) -> AsyncIterator[tuple[FakeStateManager, httpx.AsyncClient]]:
    """A started fake on an auto-advancing ManualClock, plus a client that sends the key."""
    kwargs.setdefault("clock", ManualClock(START, auto_advance=True))
    kwargs.setdefault("seed", 0)
    async with FakeStateManager(api_key=KEY, **kwargs) as sm, sm.client() as client:
        yield sm, client


async def ok(response_or_coro: Any, status: int = 200) -> Any:
    """Await a request, assert its status, return the JSON body."""
    response: httpx.Response = await response_or_coro
    assert response.status_code == status, (response.status_code, response.text)
    return response.json()


async def setup_graph(
    client: httpx.AsyncClient,
    nodes: list[dict[str, Any]],
    templates: list[dict[str, Any]],
    graph: str = "g",
    **extra: Any,
) -> dict[str, Any]:
    """Register ``nodes``, upsert ``templates`` as graph ``graph``, assert it becomes VALID."""
    await ok(client.put(f"{PREFIX}/nodes/", json={"runtime_name": "rt", "nodes": nodes}))
    body = {"secrets": {}, "nodes": templates, **extra}
    upserted = await ok(client.put(f"{PREFIX}/graph/{graph}", json=body), 201)
    assert upserted["validation_status"] == "PENDING"
    got: dict[str, Any] = await ok(client.get(f"{PREFIX}/graph/{graph}"))
    assert got["validation_status"] == "VALID", got["validation_errors"]
    return got


async def trigger(client: httpx.AsyncClient, graph: str = "g", **body: Any) -> str:
    result = await ok(client.post(f"{PREFIX}/graph/{graph}/trigger", json=body))
    assert result["status"] == "CREATED"
    return str(result["run_id"])


async def claim(client: httpx.AsyncClient, *names: str, batch_size: int = 10) -> list[Any]:
    result = await ok(
        client.post(
            f"{PREFIX}/states/enqueue", json={"nodes": list(names), "batch_size": batch_size}
        )
    )
    assert result["status"] == "QUEUED"
    assert result["count"] == len(result["states"])
    return list(result["states"])


async def executed(client: httpx.AsyncClient, state_id: str, outputs: list[Any]) -> None:
    """Report a state executed with ``outputs`` and assert the §2.8 answer."""
    body = await ok(client.post(f"{PREFIX}/state/{state_id}/executed", json={"outputs": outputs}))
    assert body == {"status": "EXECUTED"}


class SeededUuids:
    """A stand-in for ``uuid.uuid4`` drawing from the active side's seeded source, so that two
    fakes compared request for request (fast path against normal app) mint the same ids."""

    def __init__(self) -> None:
        self.sources: dict[str, random.Random] = {}
        self.active = ""

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self.sources[self.active].getrandbits(128), version=4)

"""A dashboard test's world: a fake on a ManualClock, an API client, a logged-in browser-like
client, and a run with a fan-out, a failed state and a uniting state, driven over ``/v0``.

The graph (namespace chosen per test, hostile names included)::

    start -> split (fan-out: 3 items) -> work (x3; "b" fails) -> collect (unites start)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from fake_state_manager import FakeStateManager, ManualClock

__all__ = [
    "HOSTILE_NAMESPACE",
    "HOSTILE_NODE",
    "KEY",
    "SECRET_VALUE",
    "START",
    "World",
    "csrf_of",
    "fanout_of",
    "login",
    "world",
]

KEY = "dashboard-test-key"
START = 1_767_225_600.0
#: A graph secret's value: it must never appear in any page (only its name, ``token``).
SECRET_VALUE = "s3cr3t-VALUE-never-shown-4f1d"
#: A namespace and a node name an attacker might choose (no "/": a path segment).
HOSTILE_NAMESPACE = "ns<img src=x onerror=alert(1)>\"'&"
HOSTILE_NODE = "<script>alert('node')</script>"


def _schema(*fields: str) -> dict[str, Any]:
    return {
        "properties": {f: {"title": f.title(), "type": "string"} for f in fields},
        "required": list(fields),
        "title": "Model",
        "type": "object",
    }


def _node(
    name: str, inputs: tuple[str, ...], outputs: tuple[str, ...], secrets: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "name": name,
        "inputs_schema": _schema(*inputs),
        "outputs_schema": _schema(*outputs),
        "secrets": list(secrets),
    }


def _template(
    identifier: str,
    node_name: str,
    namespace: str,
    inputs: dict[str, str],
    next_nodes: list[str] | None = None,
    unites: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "node_name": node_name,
        "namespace": namespace,
        "identifier": identifier,
        "inputs": inputs,
        "next_nodes": next_nodes,
        "unites": unites,
    }


def csrf_of(html: str) -> str:
    """The CSRF token of a page's forms."""
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


def fanout_of(html: str, state_id: str) -> str:
    """The fanout_id of the retry form of ``state_id`` on a run page."""
    action = re.escape(f"/states/{state_id}/retry")
    found = re.search(action + r'".*?name="fanout_id" value="([^"]+)"', html, re.S)
    assert found is not None, f"no retry form for {state_id}"
    return found.group(1)


async def login(client: httpx.AsyncClient, key: str = KEY) -> httpx.Response:
    return await client.post("/dashboard/login", data={"key": key, "next": "/dashboard/"})


@dataclass
class World:
    """The fake, an API client (``x-api-key``), a dashboard client (no key) and the run."""

    sm: FakeStateManager
    api: httpx.AsyncClient
    web: httpx.AsyncClient
    namespace: str
    run_id: str = ""
    states: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"/v0/namespace/{quote(self.namespace, safe='')}"

    @property
    def ns_path(self) -> str:
        return f"/dashboard/ns/{quote(self.namespace, safe='')}"

    @property
    def run_path(self) -> str:
        return f"{self.ns_path}/runs/{self.run_id}"

    async def call(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.api.request(method, self.prefix + path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json()

    async def claim(self, *names: str) -> list[dict[str, Any]]:
        body = await self.call(
            "POST", "/states/enqueue", json={"nodes": list(names), "batch_size": 10}
        )
        return list(body["states"])

    def by_identifier(self, identifier: str) -> list[dict[str, Any]]:
        return [s for s in self.sm.states(self.run_id) if s["identifier"] == identifier]

    async def register_and_upsert(self, worker: str = "Work") -> None:
        ns = self.namespace
        nodes = [
            _node("Start", ("items",), ("items",)),
            _node("Split", ("items",), ("item",)),
            _node(worker, ("item",), ("value",), secrets=("token",)),
            _node("Collect", ("items",), ("done",)),
        ]
        await self.call("PUT", "/nodes/", json={"runtime_name": "rt", "nodes": nodes})
        templates = [
            _template("start", "Start", ns, {"items": "initial"}, ["split"]),
            _template("split", "Split", ns, {"items": "${{ start.outputs.items }}"}, ["work"]),
            _template("work", worker, ns, {"item": "${{ split.outputs.item }}"}, ["collect"]),
            _template(
                "collect",
                "Collect",
                ns,
                {"items": "${{ start.outputs.items }}"},
                unites={"identifier": "start"},
            ),
        ]
        body = {
            "secrets": {"token": SECRET_VALUE},
            "nodes": templates,
            "retry_policy": {"max_retries": 0},
        }
        await self.call("PUT", "/graph/fanout", 201, json=body)
        got = await self.call("GET", "/graph/fanout")
        assert got["validation_status"] == "VALID", got["validation_errors"]

    async def run_until_failed(self, worker: str = "Work") -> None:
        """Trigger a run and drive it: the "b" item of ``work`` fails (ERRORED, no retry left)."""
        run = await self.call("POST", "/graph/fanout/trigger", json={})
        self.run_id = run["run_id"]
        [start] = await self.claim("Start")
        await self.call(
            "POST", f"/state/{start['state_id']}/executed", json={"outputs": [{"items": "a,b,c"}]}
        )
        [split] = await self.claim("Split")
        outputs = [{"item": item} for item in "abc"]
        await self.call("POST", f"/state/{split['state_id']}/executed", json={"outputs": outputs})
        for work in await self.claim(worker):
            if work["inputs"]["item"] == "b":
                error = {"error": "boom <b>bold</b> for item b"}
                await self.call("POST", f"/state/{work['state_id']}/errored", json=error)
            else:
                await self.call(
                    "POST",
                    f"/state/{work['state_id']}/executed",
                    json={"outputs": [{"value": work["inputs"]["item"]}]},
                )
        assert self.sm.run_summary(self.run_id)["status"] == "FAILED"

    async def finish(self, worker: str = "Work") -> None:
        """Execute whatever is claimable until the run is no longer PENDING."""
        while self.sm.run_summary(self.run_id)["status"] == "PENDING":
            claimed = await self.claim("Start", "Split", worker, "Collect")
            assert claimed, self.sm.states(self.run_id)
            for state in claimed:
                name = state["node_name"]
                output = {"Collect": {"done": "yes"}, worker: {"value": "again"}}.get(name, {})
                await self.call(
                    "POST", f"/state/{state['state_id']}/executed", json={"outputs": [output]}
                )


@asynccontextmanager
async def world(namespace: str = "dash", *, logged_in: bool = True) -> AsyncIterator[World]:
    """A running fake with the failed run of the module docstring in ``namespace``."""
    sm = FakeStateManager(api_key=KEY, clock=ManualClock(START, auto_advance=True), seed=0)
    async with (
        sm,
        sm.client() as api,
        httpx.AsyncClient(transport=sm.transport, base_url="http://dashboard.test") as web,
    ):
        here = World(sm, api, web, namespace)
        await here.register_and_upsert()
        await here.run_until_failed()
        if logged_in:
            response = await login(web)
            assert response.status_code == 303, response.text
        yield here

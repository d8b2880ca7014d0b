"""The benchmark workload, built through the state-manager HTTP API only.

Everything here talks to a state manager through an ``httpx.AsyncClient`` (in-process ASGI
transport or loopback), so the same preparation serves exo_ref, the upstream SDK and the floor.

The drain workload is a two-node graph ``fan -> work`` (contract §3.4, §3.5): the harness itself
claims the root ``FanOut`` state and reports it executed with N outputs, which makes the state
manager create N ``Work`` states in status CREATED. Draining means claiming and executing those N
states; the run is SUCCESS when all of them are. Preparing before the contender starts keeps the
fan-out cost (a property of the state manager) out of the runtime's figure.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

FAN_NODE = "FanOut"
WORK_NODE = "Work"
DRAIN_GRAPH = "drain"
ONE_NODE_GRAPH = "single"

# JSON Schemas as pydantic's model_json_schema() renders `class Inputs(BaseModel): i: str`
# (contract §2.1); every runtime under test registers the same shapes again on start.
_EMPTY_SCHEMA: dict[str, Any] = {"properties": {}, "title": "Inputs", "type": "object"}


def str_schema(title: str, *fields: str) -> dict[str, Any]:
    """A JSON Schema with only ``str`` fields, the shape every node model must have (§8.2)."""
    return {
        "properties": {f: {"title": f.capitalize(), "type": "string"} for f in fields},
        "required": list(fields),
        "title": title,
        "type": "object",
    }


def node_registration(name: str, inputs: Sequence[str], outputs: Sequence[str]) -> dict[str, Any]:
    """One entry of the register-nodes body (contract §2.1)."""
    return {
        "name": name,
        "inputs_schema": str_schema("Inputs", *inputs) if inputs else dict(_EMPTY_SCHEMA),
        "outputs_schema": (
            str_schema("Outputs", *outputs) if outputs else dict(_EMPTY_SCHEMA, title="Outputs")
        ),
        "secrets": [],
    }


async def check(response: httpx.Response, what: str) -> Any:
    """Return the JSON body, or fail with the status and body so a broken setup is obvious."""
    if response.status_code not in (200, 201):
        raise AssertionError(f"{what} failed: {response.status_code} {response.text[:500]}")
    return response.json()


async def register(
    client: httpx.AsyncClient, ns: str, nodes: Iterable[dict[str, Any]], runtime: str = "prep"
) -> None:
    body = {"runtime_name": runtime, "runtime_namespace": ns, "nodes": list(nodes)}
    await check(await client.put(f"/v0/namespace/{ns}/nodes/", json=body), "register nodes")


async def upsert_valid_graph(
    client: httpx.AsyncClient, ns: str, graph: str, nodes: list[dict[str, Any]]
) -> None:
    """Upsert a template and wait for background verification to say VALID (contract §4.4)."""
    body = {"secrets": {}, "nodes": nodes}
    await check(await client.put(f"/v0/namespace/{ns}/graph/{graph}", json=body), "upsert graph")
    with anyio.fail_after(30):
        while True:
            got = await check(await client.get(f"/v0/namespace/{ns}/graph/{graph}"), "get graph")
            status = got["validation_status"]
            if status == "VALID":
                return
            if status == "INVALID":
                raise AssertionError(f"graph {graph} is INVALID: {got['validation_errors']}")
            await anyio.sleep(0.005)


async def trigger(
    client: httpx.AsyncClient, ns: str, graph: str, inputs: dict[str, str] | None = None
) -> str:
    url = f"/v0/namespace/{ns}/graph/{graph}/trigger"
    got = await check(await client.post(url, json={"inputs": inputs or {}}), "trigger")
    return str(got["run_id"])


async def enqueue(
    client: httpx.AsyncClient, ns: str, nodes: list[str], batch_size: int
) -> list[dict[str, Any]]:
    body = {"nodes": nodes, "batch_size": batch_size}
    got = await check(await client.post(f"/v0/namespace/{ns}/states/enqueue", json=body), "poll")
    return list(got["states"])


async def executed(
    client: httpx.AsyncClient, ns: str, state_id: str, outputs: list[dict[str, Any]]
) -> None:
    url = f"/v0/namespace/{ns}/state/{state_id}/executed"
    await check(await client.post(url, json={"outputs": outputs}), "executed")


async def run_counts(client: httpx.AsyncClient, ns: str, run_id: str) -> dict[str, Any]:
    """The run's item in the runs list (contract §7.1): counts by status group."""
    got = await check(await client.get(f"/v0/namespace/{ns}/runs/1/100"), "runs list")
    for run in got["runs"]:
        if run["run_id"] == run_id:
            return dict(run)
    raise AssertionError(f"run {run_id} is not listed in namespace {ns}")


async def wait_counts(
    client: httpx.AsyncClient,
    ns: str,
    run_id: str,
    *,
    success: int,
    total: int,
    limit: float,
    interval: float = 0.02,
) -> dict[str, Any]:
    """Poll the runs list until the run has ``success`` SUCCESS states out of ``total``.

    ``limit`` (seconds) is a deadlock guard, never a performance assertion.
    """
    with anyio.fail_after(limit):
        while True:
            counts = await run_counts(client, ns, run_id)
            if counts["errored_count"]:
                raise AssertionError(f"run {run_id} has errored states: {counts}")
            if counts["success_count"] >= success and counts["total_count"] >= total:
                return counts
            await anyio.sleep(interval)


async def setup_drain_graph(
    client: httpx.AsyncClient,
    ns: str,
    *,
    fan: str = FAN_NODE,
    work: str = WORK_NODE,
    graph: str = DRAIN_GRAPH,
) -> None:
    """Register ``fan``/``work`` nodes and upsert the ``fan -> work`` template ``graph``."""
    await register(
        client, ns, [node_registration(fan, [], ["i"]), node_registration(work, ["i"], ["o"])]
    )
    await upsert_valid_graph(
        client,
        ns,
        graph,
        [
            {"node_name": fan, "namespace": ns, "identifier": "fan", "inputs": {},
             "next_nodes": ["work"]},
            {"node_name": work, "namespace": ns, "identifier": "work",
             "inputs": {"i": "${{ fan.outputs.i }}"}, "next_nodes": None},
        ],
    )


async def prepare_fanout(
    client: httpx.AsyncClient, ns: str, n: int, *, fan: str = FAN_NODE, graph: str = DRAIN_GRAPH
) -> str:
    """Trigger ``graph`` and fan it out into ``n`` CREATED work states; return the run id.

    The run then holds ``2 * n`` states: ``n`` ``fan`` states (SUCCESS) and ``n`` work states.
    """
    run_id = await trigger(client, ns, graph)
    claimed = await enqueue(client, ns, [fan], 1)
    if len(claimed) != 1:
        raise AssertionError(f"expected to claim the {fan} root, got {claimed}")
    await executed(client, ns, claimed[0]["state_id"], [{"i": str(k)} for k in range(n)])
    # N fan states (the original plus N-1 fan-out copies) go SUCCESS once the N work
    # children exist (contract §3.5 step 3d).
    await wait_counts(client, ns, run_id, success=n, total=2 * n, limit=120 + n / 100)
    return run_id


async def setup_one_node_graph(client: httpx.AsyncClient, ns: str, node: str, field: str) -> None:
    """Register ``node`` (one ``str`` input ``field``) and upsert the one-node graph ``single``."""
    await register(client, ns, [node_registration(node, [field], [])])
    await upsert_valid_graph(
        client,
        ns,
        ONE_NODE_GRAPH,
        [{"node_name": node, "namespace": ns, "identifier": "only", "inputs": {field: "-"},
          "next_nodes": None}],
    )


@dataclass(frozen=True)
class Window:
    """Server-side timing of a drain: first poll to last executed report (seconds)."""

    start: float
    end: float
    polls: int
    reports: int

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 1e-9)


def drain_window(requests: Sequence[Any], ns: str, since: float) -> Window:
    """Measure a drain from the state manager's request log (``RecordedRequest`` items).

    Start: the first ``states/enqueue`` of the contender (after ``since``); end: the last
    ``executed``. Using the server's log makes every contender (exo_ref in-process or over
    loopback, the upstream SDK in another process, the floor) timed the same way.
    """
    poll_path = f"/v0/namespace/{ns}/states/enqueue"
    polls = [r.time for r in requests if r.time >= since and r.path == poll_path]
    reports = [
        r.time for r in requests
        if r.time >= since and r.path.startswith(f"/v0/namespace/{ns}/state/")
        and r.path.endswith("/executed")
    ]
    if not polls or not reports:
        raise AssertionError(f"no polls ({len(polls)}) or reports ({len(reports)}) recorded")
    return Window(start=min(polls), end=max(reports), polls=len(polls), reports=len(reports))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def now() -> float:
    return time.time()

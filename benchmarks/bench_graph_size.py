"""The cost of upserting a large graph template (issue #9).

In-process (``httpx.ASGITransport``), real clock, asyncio: register one node, then PUT
``/v0/namespace/{ns}/graph/{name}`` (contract §2.3) with a 10,000-node graph of one of three
shapes, and GET it back (it must be VALID: the structural checks of §4.3 and the verification of
§4.4 both ran):

- ``chain``: n0 -> n1 -> ... -> n9999, each node reading its predecessor's output;
- ``star``: one root with 9,999 children, each reading the root;
- ``layered``: a root, 100 layers of 100 nodes (each to the node below and its right
  neighbour), then a merge node uniting the root, and its child.

Figures, per shape: the PUT's wall time (best of three upserts of the same body: the first
creates, the others update), and the peak of Python allocations during one more PUT (tracemalloc,
which slows the request, hence a separate one). Targets: under 1 s and 100 MiB each. Before the
fix a 10,000-node chain took 35 s and 9 GB.

With benchmarks disabled (the normal test run) each shape runs once at 300 nodes, as a check.
"""

from __future__ import annotations

import gc
import json
import time
import tracemalloc
from typing import Any

import httpx
import pytest

from benchmarks._harness import open_target, record, run
from benchmarks._workload import node_registration

NS = "graphs"
NODE = "Step"
TARGET_S = 1.0
TARGET_MIB = 100.0


def _out(identifier: str) -> str:
    return f"${{{{ {identifier}.outputs.x }}}}"


def _node(
    identifier: str, x: str, next_nodes: list[str] | None = None, unites: str | None = None
) -> dict[str, Any]:
    return {
        "node_name": NODE,
        "namespace": NS,
        "identifier": identifier,
        "inputs": {"x": x},
        "next_nodes": next_nodes,
        "unites": None if unites is None else {"identifier": unites},
    }


def _chain(size: int) -> list[dict[str, Any]]:
    return [
        _node(f"n{i}", _out(f"n{i - 1}") if i else "start", [f"n{i + 1}"] if i + 1 < size else None)
        for i in range(size)
    ]


def _star(size: int) -> list[dict[str, Any]]:
    children = [f"c{i}" for i in range(size - 1)]
    return [_node("root", "start", children), *(_node(c, _out("root")) for c in children)]


def _layered(size: int) -> list[dict[str, Any]]:
    width = 100 if size >= 1_000 else 10
    layers = max(1, (size - 3) // width)
    nodes = [_node("root", "start", [f"l0_{j}" for j in range(width)])]
    for k in range(layers):
        for j in range(width):
            below = [f"l{k + 1}_{j}", f"l{k + 1}_{(j + 1) % width}"] if k + 1 < layers else ["m"]
            nodes.append(_node(f"l{k}_{j}", _out(f"l{k - 1}_{j}" if k else "root"), below))
    nodes.append(_node("m", _out("root"), ["tail"], unites="root"))
    nodes.append(_node("tail", _out("root")))
    return nodes


SHAPES = {"chain": _chain, "star": _star, "layered": _layered}


async def _put(client: httpx.AsyncClient, body: bytes) -> float:
    start = time.perf_counter()
    response = await client.put(
        f"/v0/namespace/{NS}/graph/g", content=body, headers={"content-type": "application/json"}
    )
    elapsed = time.perf_counter() - start
    if response.status_code != 201:
        raise AssertionError(f"upsert failed: {response.status_code} {response.text[:500]}")
    return elapsed


async def _upsert(shape: str, size: int, rounds: int) -> dict[str, Any]:
    nodes = SHAPES[shape](size)
    # Encoded once, outside the timing: the figure is the fake's cost, not the client's.
    body = json.dumps({"secrets": {}, "nodes": nodes}).encode()
    async with open_target("inproc", record_requests=False) as target:
        client = target.client
        registration = {"runtime_name": "bench", "nodes": [node_registration(NODE, ["x"], ["x"])]}
        response = await client.put(f"/v0/namespace/{NS}/nodes/", json=registration)
        assert response.status_code == 200, response.text
        samples = []
        for _ in range(rounds):
            gc.collect()
            samples.append(await _put(client, body))
        gc.collect()
        tracemalloc.start()
        try:
            await _put(client, body)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        got = (await client.get(f"/v0/namespace/{NS}/graph/g")).json()
    assert got["validation_status"] == "VALID", got["validation_errors"][:5]
    assert len(got["nodes"]) == len(nodes)
    return {
        "seconds": min(samples),
        "samples_s": samples,
        "peak_mib": peak / 2**20,
        "nodes": len(nodes),
        "edges": sum(len(n["next_nodes"] or ()) for n in nodes),
        "body_bytes": len(body),
    }


@pytest.mark.parametrize("shape", list(SHAPES))
def test_fake_upsert_large_graph(benchmark: Any, shape: str, full: bool) -> None:
    size, rounds = (10_000, 3) if full else (300, 1)
    got = benchmark.pedantic(run, args=("asyncio", _upsert, shape, size, rounds), rounds=1)
    info = {k: v for k, v in got.items() if k not in ("seconds", "peak_mib")}
    record(
        benchmark,
        f"fake/graph_upsert/{shape}/{size}/seconds",
        got["seconds"],
        "s",
        target_s=TARGET_S,
        peak_mib=got["peak_mib"],
        **info,
    )
    record(
        benchmark,
        f"fake/graph_upsert/{shape}/{size}/peak_mib",
        got["peak_mib"],
        "MiB",
        target_mib=TARGET_MIB,
        seconds=got["seconds"],
        **info,
    )

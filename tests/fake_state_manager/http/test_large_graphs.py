"""Large graph templates through the app: 10,000-node chain and star, a wide DAG with a unite
(issue #9; contract §2.3, §4.3, §4.4).

The structural checks and verification must stay linear in nodes + edges: before the fix a
10,000-node chain took 35 s and 9 GB. No time limits here (``benchmarks/bench_graph_size.py``
measures); these check that large graphs get the same answers as small ones.
"""

from __future__ import annotations

from typing import Any

from tests.builders import graph_node

from ..http_support import PREFIX, ok, registration, running, setup_graph

SIZE = 10_000
STEP = registration("Step", ("x",), ("x",))


def out(identifier: str) -> str:
    return f"${{{{ {identifier}.outputs.x }}}}"


def step(identifier: str, x: str, next_nodes: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return graph_node(identifier, "Step", {"x": x}, next_nodes, **kw)


def chain(size: int) -> list[dict[str, Any]]:
    """n0 -> n1 -> ... ; each node reads its predecessor (an ancestor, so a parent)."""
    return [
        step(f"n{i}", out(f"n{i - 1}") if i else "start", [f"n{i + 1}"] if i + 1 < size else None)
        for i in range(size)
    ]


def star(size: int) -> list[dict[str, Any]]:
    """One root with ``size - 1`` children, each reading the root."""
    children = [f"c{i}" for i in range(size - 1)]
    return [step("root", "start", children), *(step(c, out("root")) for c in children)]


def layered(layers: int, width: int) -> list[dict[str, Any]]:
    """root -> ``layers`` x ``width`` nodes, each to the node below and its right neighbour,
    the last layer -> a merge node uniting the root -> tail.

    A layer node reads the node straight above it; the merge node and its child may read only
    the root (contract §4.3: a unite's set is replaced by its target's, without the unite).
    """
    nodes = [step("root", "start", [f"l0_{j}" for j in range(width)])]
    for k in range(layers):
        for j in range(width):
            below = [f"l{k + 1}_{j}", f"l{k + 1}_{(j + 1) % width}"] if k + 1 < layers else ["m"]
            nodes.append(step(f"l{k}_{j}", out(f"l{k - 1}_{j}" if k else "root"), below))
    nodes.append(step("m", out("root"), ["tail"], unites={"identifier": "root"}))
    nodes.append(step("tail", out("root")))
    return nodes


async def upsert_valid(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    async with running() as (_, client):
        return await setup_graph(client, [STEP], nodes)


async def test_chain_of_ten_thousand_nodes_is_valid() -> None:
    got = await upsert_valid(chain(SIZE))
    assert got["validation_errors"] == []
    assert len(got["nodes"]) == SIZE
    assert [n["identifier"] for n in got["nodes"][:2]] == ["n0", "n1"]
    assert got["nodes"][-1]["identifier"] == f"n{SIZE - 1}"
    assert got["nodes"][-1]["inputs"] == {"x": out(f"n{SIZE - 2}")}
    assert got["nodes"][-1]["next_nodes"] == []


async def test_star_of_ten_thousand_nodes_is_valid() -> None:
    got = await upsert_valid(star(SIZE))
    assert got["validation_errors"] == []
    assert len(got["nodes"]) == SIZE
    assert len(got["nodes"][0]["next_nodes"]) == SIZE - 1
    assert got["nodes"][-1] == {
        "node_name": "Step",
        "namespace": "ns",
        "identifier": f"c{SIZE - 2}",
        "inputs": {"x": out("root")},
        "next_nodes": [],
        "unites": None,
    }


async def test_wide_layered_dag_with_a_unite_is_valid() -> None:
    nodes = layered(20, 100)
    got = await upsert_valid(nodes)
    assert got["validation_errors"] == []
    assert len(got["nodes"]) == len(nodes) == 2_003
    assert got["nodes"][-2]["unites"] == {"identifier": "root", "strategy": "ALL_SUCCESS"}


async def test_long_chain_errors_read_as_for_small_graphs() -> None:
    # The last node reads itself, and a node in the middle reads a descendant: the 400 lists
    # both, in template order (contract §4.3 "Inputs").
    nodes = chain(SIZE)
    last = SIZE - 1
    nodes[last]["inputs"] = {"x": out(f"n{last}")}
    nodes[5_000]["inputs"] = {"x": out("n5001")}
    async with running() as (_, client):
        await ok(client.put(f"{PREFIX}/nodes/", json={"runtime_name": "rt", "nodes": [STEP]}))
        response = await client.put(f"{PREFIX}/graph/g", json={"secrets": {}, "nodes": nodes})
        assert response.status_code == 400
        detail = response.json()["detail"]
        assert detail.startswith(
            "Error validating graph template: 1 validation error for GraphTemplate\n"
            "  Value error, Input ${{ n5001.outputs.x }} depends on n5001 but n5001 is not a "
            "parent of n5000\n"
            f"Input ${{{{ n{last}.outputs.x }}}} depends on n{last} but n{last} is not a "
            f"parent of n{last} [type=value_error, input_value={{'name': 'g', 'namespace'..."
        )
        missing = await client.get(f"{PREFIX}/graph/g")
    assert missing.status_code == 404

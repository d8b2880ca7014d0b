"""The fault transport (conformance/_faults.py) against a stub server (httpx.MockTransport)."""

from __future__ import annotations

import httpx
import pytest

from conformance import EventLog, FaultKind, FaultPlan, FaultTransport
from exo_ref import ManualClock

BASE = "http://sm/v0/namespace/ns"


def _stub() -> tuple[httpx.MockTransport, list[str]]:
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"ok": True})

    return httpx.MockTransport(handle), seen


def _client(plan: FaultPlan) -> tuple[httpx.AsyncClient, FaultTransport, list[str]]:
    stub, seen = _stub()
    faults = FaultTransport(stub, plan, EventLog(ManualClock()))
    return httpx.AsyncClient(transport=faults), faults, seen


@pytest.mark.parametrize(
    ("kind", "error", "forwarded"),
    [
        pytest.param(FaultKind.CONNECT_ERROR, httpx.ConnectError, False, id="connect"),
        pytest.param(FaultKind.RESET, httpx.ReadError, False, id="reset"),
        pytest.param(FaultKind.TIMEOUT, httpx.ReadTimeout, True, id="timeout"),
        pytest.param(FaultKind.LOST_RESPONSE, httpx.ReadError, True, id="lost"),
    ],
)
async def test_raising_faults_forward_only_when_the_server_applies(
    kind: FaultKind, error: type[Exception], forwarded: bool
) -> None:
    client, faults, seen = _client(FaultPlan(script={"executed": [kind]}))
    async with client:
        with pytest.raises(error):
            await client.post(f"{BASE}/state/1/executed", json={"outputs": []})
        assert bool(seen) is forwarded
        assert [a.kind for a in faults.actions] == [kind]
        reply = await client.post(f"{BASE}/state/1/executed", json={"outputs": []})
    assert reply.status_code == 200


async def test_status_faults_answer_without_reaching_the_server() -> None:
    plan = FaultPlan(script={"prune": [FaultKind.STATUS_503, FaultKind.STATUS_502_HTML]})
    client, _, seen = _client(plan)
    async with client:
        first = await client.post(f"{BASE}/state/1/prune", json={"data": {}})
        second = await client.post(f"{BASE}/state/1/prune", json={"data": {}})
    assert (first.status_code, second.status_code) == (503, 502)
    assert second.headers["content-type"] == "text/html"
    assert seen == []


async def test_enqueue_is_never_lost_after_the_server_claimed() -> None:
    plan = FaultPlan(script={"enqueue": [FaultKind.LOST_RESPONSE, FaultKind.TIMEOUT]})
    client, faults, seen = _client(plan)
    async with client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"{BASE}/states/enqueue", json={"nodes": ["n"], "batch_size": 1})
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{BASE}/states/enqueue", json={"nodes": ["n"], "batch_size": 1})
    assert seen == []
    assert [a.kind for a in faults.actions] == [FaultKind.CONNECT_ERROR, FaultKind.TIMEOUT]


async def test_random_plan_is_seeded_and_bounded() -> None:
    plan = FaultPlan(seed=7, rate=1.0, kinds=(FaultKind.STATUS_503,), max_consecutive=2)
    statuses: list[list[int]] = []
    for _ in range(2):
        client, _, _ = _client(plan)
        async with client:
            statuses.append(
                [(await client.get(f"{BASE}/state/1/secrets")).status_code for _ in range(6)]
            )
    assert statuses[0] == statuses[1] == [503, 503, 200, 503, 503, 200]


async def test_requests_outside_the_targets_pass() -> None:
    plan = FaultPlan(rate=1.0, targets=frozenset({"executed"}))
    client, faults, seen = _client(plan)
    async with client:
        reply = await client.put(f"{BASE}/nodes/", json={"runtime_name": "r", "nodes": []})
    assert reply.status_code == 200
    assert faults.actions == []
    assert seen == ["/v0/namespace/ns/nodes/"]

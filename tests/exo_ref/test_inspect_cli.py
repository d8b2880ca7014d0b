"""``exo-ref runs | run | retry | graph`` (exo_ref/_inspect.py, issue 10: the inspection CLI).

Most tests call ``main()`` with the in-process fake's transport; the scenario is built through the
HTTP API on a ManualClock that only moves when told to, so every timing shown is known. One test
runs the installed console script against a served fake, as a user would.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest

from exo_ref import ManualClock, SystemClock
from exo_ref._cli import main
from exo_ref._config import ENV_API_KEY, ENV_STATE_MANAGER_URI
from exo_ref._inspect import derive_retry_numbers, format_duration, short_error
from exo_ref._wire import RunGraphNode
from fake_state_manager import FakeStateManager
from tests.builders import NAMESPACE, graph_node
from tests.fake_state_manager.http_support import registration

KEY = "inspect-secret-key-4711"
PREFIX = f"/v0/namespace/{NAMESPACE}"
WIDTH = 160
FIRST_ERROR = "boom: the item exploded while it was being processed by the worker node\nline 2"
LAST_ERROR = "boom again"


@dataclass
class Scenario:
    sm: FakeStateManager
    failed_run: str
    pending_run: str


def env(monkeypatch: pytest.MonkeyPatch, sm: FakeStateManager, uri: str | None = None) -> None:
    monkeypatch.setenv(ENV_STATE_MANAGER_URI, uri or sm.uri)
    monkeypatch.setenv(ENV_API_KEY, sm.api_key)


def cli(sm: FakeStateManager | None, *args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    transport = sm.transport if sm is not None else None
    status = main(list(args), out=out, err=err, transport=transport, width=WIDTH)
    return status, out.getvalue(), err.getvalue()


async def api(sm: FakeStateManager, method: str, path: str, body: Any = None) -> Any:
    async with sm.client() as client:
        response = await client.request(method, PREFIX + path, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def build(sm: FakeStateManager) -> tuple[str, str]:
    """fan (3 outputs) -> work; one work errors, is retried once and errors again (FAILED)."""
    clock = sm.clock
    assert isinstance(clock, ManualClock)
    await api(sm, "PUT", "/nodes/", {
        "runtime_name": "rt", "runtime_namespace": NAMESPACE,
        "nodes": [
            {**registration("Fan", (), ("i",)), "namespace": NAMESPACE},
            {**registration("Work", ("i",), ("r",)), "namespace": NAMESPACE},
        ],
    })
    await api(sm, "PUT", "/graph/g", {
        "secrets": {"api_key": "do-not-show-this-secret-value"},
        "retry_policy": {"max_retries": 1, "strategy": "FIXED", "backoff_factor": 1000},
        "triggers": [{"type": "CRON", "value": {"expression": "0 * * * *"}}],
        "nodes": [
            graph_node("fan", "Fan", next_nodes=["work"]),
            graph_node("work", "Work", inputs={"i": "${{ fan.outputs.i }}"}),
        ],
    })
    assert (await api(sm, "GET", "/graph/g"))["validation_status"] == "VALID"
    failed = (await api(sm, "POST", "/graph/g/trigger", {}))["run_id"]
    clock.advance(1)
    fan = (await api(sm, "POST", "/states/enqueue", {"nodes": ["Fan"], "batch_size": 5}))
    clock.advance(1.5)
    await api(sm, "POST", f"/state/{fan['states'][0]['state_id']}/executed",
              {"outputs": [{"i": "0"}, {"i": "1"}, {"i": "2"}]})
    clock.advance(0.5)
    works = (await api(sm, "POST", "/states/enqueue", {"nodes": ["Work"], "batch_size": 5}))
    assert works["count"] == 3
    clock.advance(2)
    first, second, third = (s["state_id"] for s in works["states"])
    await api(sm, "POST", f"/state/{first}/executed", {"outputs": [{"r": "a"}]})
    await api(sm, "POST", f"/state/{second}/executed", {"outputs": [{"r": "b"}]})
    assert (await api(sm, "POST", f"/state/{third}/errored", {"error": FIRST_ERROR}))[
        "retry_created"]
    clock.advance(1)
    retry = (await api(sm, "POST", "/states/enqueue", {"nodes": ["Work"], "batch_size": 5}))
    assert retry["count"] == 1
    clock.advance(0.25)
    await api(sm, "POST", f"/state/{retry['states'][0]['state_id']}/errored",
              {"error": LAST_ERROR})
    clock.advance(60)
    pending = (await api(sm, "POST", "/graph/g/trigger", {}))["run_id"]
    return failed, pending


def new_scenario(backend: str = "asyncio") -> Scenario:
    sm = FakeStateManager(api_key=KEY, clock=ManualClock(), seed=0)
    failed, pending = anyio.run(build, sm, backend=backend)
    return Scenario(sm, failed, pending)


@pytest.fixture(scope="module", params=["asyncio", "trio"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    """Read-only tests share one scenario per backend it was built on."""
    return new_scenario(str(request.param))


@pytest.fixture
def fresh() -> Scenario:
    """For tests that change the scenario (retry)."""
    return new_scenario()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_STATE_MANAGER_URI, ENV_API_KEY, "NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)


def read(sm: FakeStateManager, path: str) -> Any:
    return anyio.run(api, sm, "GET", path)


def cells(line: str) -> list[str]:
    """The cells of a table row (columns are two or more spaces apart)."""
    return re.split(r"\s{2,}", line.strip())


# -- runs --------------------------------------------------------------------------------------


def test_runs_prints_a_table_of_the_runs_newest_first(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, scenario.sm)
    status, out, err = cli(scenario.sm, "runs", "--namespace", NAMESPACE)
    assert (status, err) == (0, "")
    assert "\x1b[" not in out  # not a terminal: no colour
    lines = out.splitlines()
    assert lines[0].strip() == f"Runs in namespace {NAMESPACE}"
    header = next(line for line in lines if "run id" in line)
    assert header.split() == ["run", "id", "graph", "status", "states", "created"]
    rows = [cells(line) for line in lines if re.match(r"\s*[0-9a-f]{8}-", line)]
    # Newest first; the state counts (total, then the non-zero ones); created to the second,
    # in the server's time.
    assert rows == [
        [scenario.pending_run, "g", "PENDING", "1: 1 pending", "2026-01-01 00:01:06"],
        [scenario.failed_run, "g", "FAILED", "7: 5 ok, 1 errored, 1 retried",
         "2026-01-01 00:00:00"],
    ]
    assert "page 1, 20 per page, 2 runs in total" in out


def test_runs_filters_by_status_and_pages(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, scenario.sm)
    status, out, _ = cli(scenario.sm, "runs", "-n", NAMESPACE, "--status", "failed")
    assert status == 0
    assert scenario.failed_run in out
    assert scenario.pending_run not in out
    assert "1 FAILED on this page" in out
    status, out, _ = cli(scenario.sm, "runs", "-n", NAMESPACE, "--page", "2", "--size", "1")
    assert status == 0
    assert scenario.failed_run in out
    assert scenario.pending_run not in out
    assert "page 2, 1 per page, 2 runs in total" in out


def test_runs_json_is_the_api_answer(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    env(monkeypatch, scenario.sm)
    status, out, _ = cli(scenario.sm, "runs", "-n", NAMESPACE, "--json", "--size", "5")
    assert status == 0
    assert json.loads(out) == read(scenario.sm, "/runs/1/5")
    status, out, _ = cli(scenario.sm, "runs", "-n", NAMESPACE, "--json", "--status", "PENDING")
    answer = read(scenario.sm, "/runs/1/20")
    assert json.loads(out) == {
        **answer, "runs": [r for r in answer["runs"] if r["status"] == "PENDING"],
    }


def test_runs_of_an_empty_namespace(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    env(monkeypatch, scenario.sm)
    status, out, _ = cli(scenario.sm, "runs", "-n", "nobody-here")
    assert status == 0
    assert "0 runs in total" in out


# -- run ---------------------------------------------------------------------------------------


def tree_lines(out: str) -> list[tuple[int, list[str]]]:
    """(depth, words) of each state of a rendered tree (depth 1 = under the header).

    A state's error is on the next line, under the state's guide: its words are appended.
    """
    result: list[tuple[int, list[str]]] = []
    for line in out.splitlines()[2:]:
        start = re.search(r"[A-Za-z0-9]", line)
        assert start is not None, line
        guide = line[start.start() - 4: start.start()]
        if guide in ("├── ", "└── "):
            result.append((start.start() // 4, line[start.start():].split()))
        else:
            assert line[start.start():].startswith("error: "), line
            result[-1][1].extend(line[start.start():].split())
    return result


def test_run_prints_the_states_as_a_tree(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, scenario.sm)
    sm = scenario.sm
    status, out, err = cli(sm, "run", scenario.failed_run, "--namespace", NAMESPACE)
    assert (status, err) == (0, "")
    assert out.splitlines()[0].split() == ["run", scenario.failed_run, "graph", "g", "FAILED"]
    assert out.splitlines()[1] == "7 states: ERRORED 1, SUCCESS 5, RETRY_CREATED 1"
    states = {s["id"]: s for s in sm.states(scenario.failed_run)}
    fans = [s for s in states.values() if s["identifier"] == "fan"]
    works = [s for s in states.values() if s["identifier"] == "work"]
    by_parent = {fan["id"]: [w for w in works if w["parents"]["fan"] == fan["id"]]
                 for fan in fans}
    errored_parent = next(f for f, ws in by_parent.items() if len(ws) == 2)
    original, retried = by_parent[errored_parent]

    lines = tree_lines(out)
    # Shape: the three fan states (the original and its two fan-out copies are all roots), each
    # with its work state under it; the errored one's retry is its sibling (same parent edge).
    assert [(depth, words[0], words[2]) for depth, words in lines] == [
        (1, "fan", "SUCCESS"), (2, "work", "SUCCESS"),
        (1, "fan", "SUCCESS"), (2, "work", "SUCCESS"),
        (1, "fan", "SUCCESS"), (2, "work", "RETRY_CREATED"), (2, "work", "ERRORED"),
    ]
    text = {words[-1] if "error:" not in words else words[words.index("error:") - 1]:
            " ".join(words) for _, words in lines}
    # Timing on the ManualClock: the fan state was created at +0, claimed at +1 and executed at
    # +2.5, when its copies and the works were created; the works were claimed at +3 and
    # reported at +5, when the retry was created; it errored at +6.25.
    root = next(f["id"] for f in fans if f["created_at"] == min(x["created_at"] for x in fans))
    assert text[root] == f"fan Fan SUCCESS +0.000s took 2.500s {root}"
    assert text[original["id"]] == (
        f"work Work RETRY_CREATED +2.500s took 2.500s {original['id']} error: "
        "boom: the item exploded while it was being processed by the…"
    )
    assert text[retried["id"]] == (
        f"work Work ERRORED retry 1 +5.000s took 1.250s {retried['id']} error: boom again"
    )
    assert original["retry_count"] == 0
    assert retried["retry_count"] == 1


def test_run_json_is_the_run_graph(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    env(monkeypatch, scenario.sm)
    status, out, _ = cli(scenario.sm, "run", scenario.failed_run, "-n", NAMESPACE, "--json")
    assert status == 0
    assert json.loads(out) == read(scenario.sm, f"/states/run/{scenario.failed_run}/graph")


def test_run_of_an_unknown_run_is_one_line_and_exit_1(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, scenario.sm)
    for extra in ((), ("--json",)):
        status, out, err = cli(scenario.sm, "run", "no-such-run", "-n", NAMESPACE, *extra)
        assert (status, out) == (1, "")
        assert err == (
            f"exo-ref run: run no-such-run has no states in namespace {NAMESPACE}: check the run "
            "id and --namespace\n"
        )


def node(state_id: str, identifier: str, status: str) -> RunGraphNode:
    return {"id": state_id, "node_name": "N", "identifier": identifier, "status": status,
            "error": None}


def test_retry_numbers_count_the_replaced_siblings() -> None:
    siblings = [node("a", "x", "RETRY_CREATED"), node("b", "x", "RETRY_CREATED"),
                node("c", "x", "SUCCESS"), node("d", "x", "SUCCESS"), node("e", "y", "SUCCESS")]
    # No timing known: the API's order decides.
    assert derive_retry_numbers(siblings, {}) == {"a": 0, "b": 1, "c": 2, "d": 2, "e": 0}


def test_small_formatters() -> None:
    assert [format_duration(s) for s in (0.0421, 12.34, 245, 7380)] == [
        "0.042s", "12.3s", "4m05s", "2h03m"]
    assert short_error("one\ntwo") == "one …"
    assert short_error("x" * 100, 10) == "x" * 9 + "…"


# -- retry -------------------------------------------------------------------------------------


def test_retry_creates_a_new_state(fresh: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    sm = fresh.sm
    env(monkeypatch, sm)
    errored = next(s for s in sm.states(fresh.failed_run) if s["status"] == "ERRORED")
    status, out, err = cli(sm, "retry", errored["id"], "-n", NAMESPACE)
    assert (status, err) == (0, "")
    match = re.fullmatch(rf"retried state {errored['id']}: new state ([0-9a-f]{{24}}) is CREATED\n",
                         out)
    assert match is not None, out
    states = {s["id"]: s for s in sm.states(fresh.failed_run)}
    new = states[match.group(1)]
    assert (new["status"], new["identifier"], new["retry_count"]) == ("CREATED", "work", 0)
    assert states[errored["id"]]["status"] == "RETRY_CREATED"
    # A fresh uuid4 fanout id per call, like upstream's dashboard.
    assert re.fullmatch(r"[0-9a-f-]{36}", new["manual_retry_fanout_id"])

    # --json: the API's answer, and a second retry of the same state gets another fanout id.
    status, out, _ = cli(sm, "retry", errored["id"], "-n", NAMESPACE, "--json")
    assert status == 0
    answer = json.loads(out)
    assert set(answer) == {"id", "status"}
    assert answer["status"] == "CREATED"
    newer = {s["id"]: s for s in sm.states(fresh.failed_run)}[answer["id"]]
    assert newer["manual_retry_fanout_id"] != new["manual_retry_fanout_id"]


def test_retry_refused_shows_the_servers_detail(
    fresh: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, fresh.sm)
    status, out, err = cli(fresh.sm, "retry", "0123456789abcdef01234567", "-n", NAMESPACE)
    assert (status, out) == (1, "")
    assert err == "exo-ref retry: Failed to retry state: 404 State not found\n"


# -- graph -------------------------------------------------------------------------------------


def test_graph_shows_the_template_and_secret_names_only(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, scenario.sm)
    status, out, err = cli(scenario.sm, "graph", "g", "-n", NAMESPACE)
    assert (status, err) == (0, "")
    lines = [line.strip() for line in out.splitlines()]
    assert lines[0].split() == ["graph", "g", "namespace", NAMESPACE, "VALID"]
    rows = [cells(line) for line in lines if line.startswith(("fan ", "work "))]
    assert rows == [["fan", "Fan", "work", "-", "-"],
                    ["work", "Work", "-", "-", "i = ${{ fan.outputs.i }}"]]
    assert "triggers: CRON 0 * * * *" in lines
    assert "retry policy: FIXED, max 1 retries, backoff 1000 ms, exponent 2" in lines
    assert "secrets: api_key" in lines
    assert "do-not-show-this-secret-value" not in out


def test_graph_shows_validation_errors_and_unites(monkeypatch: pytest.MonkeyPatch) -> None:
    sm = FakeStateManager(api_key=KEY, clock=ManualClock())

    async def upsert() -> None:
        await api(sm, "PUT", "/graph/bad", {"secrets": {}, "nodes": [
            graph_node("a", "Missing", next_nodes=["b"]),
            graph_node("b", "AlsoMissing", unites={"identifier": "a"}),
        ]})

    anyio.run(upsert)
    env(monkeypatch, sm)
    status, out, _ = cli(sm, "graph", "bad", "-n", NAMESPACE)
    assert status == 0
    assert "INVALID" in out.splitlines()[0]
    assert "validation errors:" in out
    assert re.search(r"- .*Missing", out)
    assert re.search(r"^\s*b\s+AlsoMissing\s+-\s+a \(ALL_SUCCESS\)", out, re.MULTILINE)
    assert "secrets: none" in out
    assert "triggers: none" in out


def test_graph_json_is_the_api_answer(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    env(monkeypatch, scenario.sm)
    status, out, _ = cli(scenario.sm, "graph", "g", "-n", NAMESPACE, "--json")
    assert status == 0
    assert json.loads(out) == read(scenario.sm, "/graph/g")
    assert "do-not-show-this-secret-value" not in out


def test_graph_against_upstreams_get_takes_triggers_from_the_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Upstream's GET of one graph always answers the default retry policy and no triggers
    # (contract §2.4); the graphs list has the stored ones, next to the secrets' ciphertexts.
    node_template = graph_node("only", "Only")
    get = {
        "nodes": [node_template], "secrets": {"token": True},
        "retry_policy": {"max_retries": 3, "strategy": "EXPONENTIAL", "backoff_factor": 2000,
                         "exponent": 2, "max_delay": None},
        "store_config": {"required_keys": [], "default_values": {}}, "triggers": [],
        "created_at": "2026-01-01T00:00:00.000000", "updated_at": "2026-01-01T00:00:00.000000",
        "validation_status": "VALID", "validation_errors": [],
    }
    listed = {
        **get, "_id": "0" * 24, "name": "up", "namespace": NAMESPACE,
        "secrets": {"token": "gAAAAABciphertext-that-must-not-be-shown"},
        "retry_policy": {"max_retries": 5, "strategy": "LINEAR", "backoff_factor": 100,
                         "exponent": 2, "max_delay": 900},
        "store_config": {"required_keys": ["tenant"], "default_values": {"region": "eu"}},
        "triggers": [{"type": "CRON", "value": {"expression": "*/5 * * * *"}}],
    }

    def upstream(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"{PREFIX}/graph/up":
            return httpx.Response(200, json=get)
        assert request.url.path == f"{PREFIX}/graphs/"
        return httpx.Response(200, json={"namespace": NAMESPACE, "count": 1,
                                         "templates": [listed]})

    monkeypatch.setenv(ENV_API_KEY, KEY)
    out, err = io.StringIO(), io.StringIO()
    status = main(["graph", "up", "-n", NAMESPACE, "--uri", "http://upstream.test"], out=out,
                  err=err, transport=httpx.MockTransport(upstream), width=WIDTH)
    assert (status, err.getvalue()) == (0, "")
    lines = [line.strip() for line in out.getvalue().splitlines()]
    assert "triggers: CRON */5 * * * *" in lines
    assert "retry policy: LINEAR, max 5 retries, backoff 100 ms, exponent 2, max delay 900 ms" \
        in lines
    assert "store: required tenant; defaults region" in lines
    assert "secrets: token" in lines
    assert "ciphertext" not in out.getvalue()

    out = io.StringIO()
    status = main(["graph", "up", "-n", NAMESPACE, "--uri", "http://upstream.test", "--json"],
                  out=out, transport=httpx.MockTransport(upstream))
    assert status == 0
    assert json.loads(out.getvalue()) == get  # the GET's answer, not the list's


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        pytest.param({"s1": ("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z"),
                      "s2": ("2026-01-01T00:00:02", "2026-01-01T00:00:03")},
                     ["a A  SUCCESS  +0.000s  took 1.000s  s1",
                      "b B  SUCCESS  +2.000s  took 1.000s  s2"], id="with-and-without-offset"),
        pytest.param({"s1": ("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:01+00:00"),
                      "s2": (None, None)},
                     ["b B  SUCCESS  s2", "a A  SUCCESS  +0.000s  took 1.000s  s1"],
                     id="one-state-without-times"),
    ],
)
def test_run_copes_with_times_with_and_without_an_offset_or_missing(
    times: dict[str, tuple[str | None, str | None]], expected: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A time without an offset is UTC (the server's); mixing them must not break the tree.
    graph = {"graph_name": "g", "execution_summary": {"SUCCESS": 2}, "edges": [], "nodes": [
        {"id": sid, "identifier": ident, "node_name": ident.upper(), "status": "SUCCESS",
         "error": None} for sid, ident in (("s1", "a"), ("s2", "b"))
    ]}

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/graph"):
            return httpx.Response(200, json=graph)
        created, updated = times[request.url.path.rsplit("/", 1)[1]]
        return httpx.Response(200, json={"created_at": created, "updated_at": updated})

    monkeypatch.setenv(ENV_API_KEY, KEY)
    out, err = io.StringIO(), io.StringIO()
    status = main(["run", "r1", "-n", NAMESPACE, "--uri", "http://sm.test"], out=out, err=err,
                  transport=httpx.MockTransport(server), width=WIDTH)
    assert (status, err.getvalue()) == (0, "")
    lines = out.getvalue().splitlines()
    assert "2 states: SUCCESS 2" in lines
    assert [line.lstrip("├└─ ") for line in lines[-2:]] == expected


def test_graph_unknown_is_the_servers_404(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, scenario.sm)
    status, out, err = cli(scenario.sm, "graph", "nope", "-n", NAMESPACE)
    assert (status, out) == (1, "")
    assert err == (
        f"exo-ref graph: Failed to get graph: 404 Graph template nope not found in namespace "
        f"{NAMESPACE}\n"
    )


# -- configuration and failures ----------------------------------------------------------------


def test_unset_uri_and_key_are_one_line(scenario: Scenario) -> None:
    status, out, err = cli(scenario.sm, "runs", "-n", NAMESPACE)
    assert (status, out) == (1, "")
    assert err == (
        "exo-ref runs: no state manager URI: pass --uri or set EXOSPHERE_STATE_MANAGER_URI\n"
    )
    status, _, err = cli(scenario.sm, "runs", "-n", NAMESPACE, "--uri", scenario.sm.uri)
    assert status == 1
    assert err == "exo-ref runs: no API key: pass --key or set EXOSPHERE_API_KEY\n"


def test_flags_override_the_environment(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_STATE_MANAGER_URI, "http://elsewhere.invalid:9")
    monkeypatch.setenv(ENV_API_KEY, "not-the-key-at-all")
    status, out, _ = cli(scenario.sm, "runs", "-n", NAMESPACE, "--uri", scenario.sm.uri,
                         "--key", KEY)
    assert status == 0
    assert scenario.failed_run in out


def test_a_wrong_key_is_one_line_without_the_key(scenario: Scenario) -> None:
    wrong = "wrong-key-that-must-not-leak-0042"
    for command in (["runs"], ["run", scenario.failed_run], ["retry", "0" * 24], ["graph", "g"]):
        status, out, err = cli(scenario.sm, *command, "-n", NAMESPACE, "--uri", scenario.sm.uri,
                               "--key", wrong)
        assert (status, out) == (1, "")
        assert err == (
            f"exo-ref {command[0]}: the state manager refused the API key (401 Invalid API key);"
            " check --key or EXOSPHERE_API_KEY\n"
        )
        assert wrong not in err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_names_the_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(ENV_API_KEY, KEY)
    status, out, err = cli(None, "runs", "-n", NAMESPACE, "--uri", uri)
    assert (status, out) == (1, "")
    assert err.startswith(f"exo-ref runs: cannot reach the state manager at {uri}: ConnectError")
    assert err.endswith("; check --uri and that the state manager is running\n")
    assert err.count("\n") == 1
    assert KEY not in err


def test_a_uri_with_the_version_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_API_KEY, KEY)
    status, _, err = cli(None, "runs", "-n", NAMESPACE, "--uri", "http://localhost:8000/v0")
    assert status == 1
    assert "'http://localhost:8000'" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://", "the state manager URI 'http://' names no host"),
        ("http://[::1", "the state manager URI 'http://[::1' is not a valid URL: Invalid port"),
        ("http://localhost:99999", "the state manager URI 'http://localhost:99999' has a port "
         "out of range"),
        ("ftp://x", "State manager URI must start with http:// or https://, got 'ftp://x'"),
    ],
)
def test_a_malformed_uri_is_one_line(
    uri: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_API_KEY, KEY)
    status, out, err = cli(None, "graph", "g", "-n", NAMESPACE, "--uri", uri)
    assert (status, out) == (1, "")
    assert err.startswith(f"exo-ref graph: {message}")
    assert err.count("\n") == 1


def test_a_server_that_is_not_a_state_manager(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"hello": "world"})

    monkeypatch.setenv(ENV_API_KEY, KEY)
    out, err = io.StringIO(), io.StringIO()
    status = main(["runs", "-n", NAMESPACE, "--uri", "http://other.test"], out=out, err=err,
                  transport=httpx.MockTransport(handler))
    assert (status, out.getvalue()) == (1, "")
    assert err.getvalue() == (
        "exo-ref runs: the state manager's answer does not have the expected shape (KeyError: "
        "'runs'); is http://other.test an Exosphere state manager?\n"
    )


def test_help_lists_the_inspection_commands() -> None:
    out = io.StringIO()
    assert main([], out=out) == 2
    for command in ("demo", "runs", "run", "retry", "graph"):
        assert re.search(rf"^\s+{command}\s", out.getvalue(), re.MULTILINE), out.getvalue()


@pytest.mark.parametrize(
    "argv",
    [
        ["runs"],  # --namespace is required
        ["runs", "-n", NAMESPACE, "--page", "0"],
        ["runs", "-n", NAMESPACE, "--status", "DONE"],
        ["run", "-n", NAMESPACE],
        ["retry", "-n", NAMESPACE],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "usage: exo-ref" in capsys.readouterr().err


# -- colour ------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_on_a_terminal_unless_no_color(
    scenario: Scenario, monkeypatch: pytest.MonkeyPatch
) -> None:
    env(monkeypatch, scenario.sm)
    monkeypatch.setenv("TERM", "xterm-256color")
    out = Terminal()
    assert main(["runs", "-n", NAMESPACE], out=out, transport=scenario.sm.transport) == 0
    assert "\x1b[" in out.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    out = Terminal()
    assert main(["runs", "-n", NAMESPACE], out=out, transport=scenario.sm.transport) == 0
    assert "\x1b[3" not in out.getvalue()  # no foreground colours
    assert scenario.failed_run in out.getvalue()


# -- the real console script against a served fake ---------------------------------------------


def console_script() -> list[str]:
    script = shutil.which("exo-ref", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "exo_ref._cli"]


@pytest.fixture
def served() -> Iterator[tuple[FakeStateManager, str]]:
    sm = FakeStateManager(api_key=KEY, clock=SystemClock())
    with sm.serve_in_thread() as uri:
        yield sm, uri


def test_console_script_against_a_served_fake(served: tuple[FakeStateManager, str]) -> None:
    sm, uri = served

    async def one_run() -> str:
        await api(sm, "PUT", "/nodes/", {
            "runtime_name": "rt", "runtime_namespace": NAMESPACE,
            "nodes": [{**registration("Solo"), "namespace": NAMESPACE}],
        })
        await api(sm, "PUT", "/graph/solo", {"secrets": {}, "nodes": [graph_node("solo")]})
        assert (await api(sm, "GET", "/graph/solo"))["validation_status"] == "VALID"
        return str((await api(sm, "POST", "/graph/solo/trigger", {}))["run_id"])

    run_id = anyio.run(one_run)
    environment = {
        **{k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")},
        ENV_STATE_MANAGER_URI: uri, ENV_API_KEY: KEY, "COLUMNS": "150",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*console_script(), *args], env=environment, capture_output=True, text=True,
            timeout=60, check=False,
        )

    done = run("runs", "--namespace", NAMESPACE)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"{run_id}\s+solo\s+PENDING\s+1: 1 pending\s", done.stdout), done.stdout
    assert "\x1b[" not in done.stdout  # a pipe, not a terminal

    done = run("run", run_id, "--namespace", NAMESPACE)
    assert done.returncode == 0, done.stderr
    assert re.search(r"└── solo Solo\s+CREATED\s+\+0\.000s", done.stdout), done.stdout

    done = run("run", run_id, "--namespace", NAMESPACE, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["nodes"][0]["status"] == "CREATED"

    done = run("runs", "--namespace", NAMESPACE, "--key", "a-wrong-key-for-the-subprocess")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "refused the API key" in done.stderr
    assert "Traceback" not in done.stderr
    assert "a-wrong-key-for-the-subprocess" not in done.stderr

"""``kill -9`` of a served fake with ``--db`` in the middle of a run, then a restart on the file.

A real runtime process (tests/fake_state_manager/restart_runtime.py) drives the graph
``fan (6 items) -> work -> leaf`` against ``python -m fake_state_manager --db PATH``:

1. the runtime runs ``fan``, five ``work`` states and their five ``leaf`` states; every one of
   those reports was acknowledged, so each is SUCCESS in the file. ``work 3`` is claimed (QUEUED,
   acknowledged: the runtime holds it) and blocks in the node on a FIFO;
2. the test waits until the server shows exactly that (16 SUCCESS, 1 QUEUED, nothing CREATED)
   and kills the server with SIGKILL. Nothing is claimable at that moment, so no enqueue in
   flight can claim a state whose answer is lost;
3. a new server on the same file and port resumes: same run, same counts, ``work 3`` still
   QUEUED (upstream has no lease, so it is not handed out again), nothing re-executed;
4. the test opens the gate: the runtime, which kept polling through the outage, reports
   ``work 3`` to the new server, which creates ``leaf 3``; the runtime claims it and reads its
   secret (decrypted with the key kept beside the file) and the run ends SUCCESS.

Every node records each execution in a log file, and each appears exactly once. A state claimed
but not acknowledged at kill time (an enqueue answer lost with the server) would stay QUEUED
forever, as upstream's would: the timeline above never has one, so no ``re-enqueue-after`` is
needed. A second test kills the server under a stream of triggers: every answered one is in the
file after the restart. The tests wait on conditions by polling the API (a runtime in another
process cannot wake them), with a generous safety net; nothing depends on how long a step takes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from fake_state_manager._store.sqlite import KEY_ENV

ROOT = Path(__file__).resolve().parents[2]
KEY = "restart-test-key"
NAMESPACE = "restart"  # restart_runtime.NAMESPACE
PREFIX = f"/v0/namespace/{NAMESPACE}"
ITEMS = 6
HELD = "3"  # restart_runtime.HELD
TOKEN = "leaf-secret-value"
SAFETY_NET = 120.0  # seconds: only against a hung test, never a timing assumption

T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    return {**env, "PYTHONPATH": str(ROOT), "STATE_MANAGER_SECRET": KEY}


class Server:
    """``python -m fake_state_manager --db PATH --port PORT``, listening once constructed."""

    def __init__(self, db: Path, port: int, stderr: Path) -> None:
        self.stderr_path = stderr
        self._stderr = stderr.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fake_state_manager", "--db", str(db), "--port", str(port)],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        assert first.startswith("fake state manager listening on"), self.stderr()
        for _ in range(2):
            self.process.stdout.readline()

    def stderr(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self._close()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=SAFETY_NET)
        self._close()
        return self.process.returncode

    def ensure_gone(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close()

    def _close(self) -> None:
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._stderr.close()


def _wait_until(check: Callable[[], T | None], what: str) -> T:
    deadline = time.monotonic() + SAFETY_NET
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)  # the poll spacing of a condition wait, not a synchronisation


def _summary(client: httpx.Client, run_id: str) -> dict[str, Any]:
    runs = client.get(f"{PREFIX}/runs/1/10").raise_for_status().json()["runs"]
    (run,) = [r for r in runs if r["run_id"] == run_id]
    return dict(run)


def _execution_summary(client: httpx.Client, run_id: str) -> dict[str, int]:
    graph = client.get(f"{PREFIX}/states/run/{run_id}/graph").raise_for_status().json()
    return {status: n for status, n in graph["execution_summary"].items() if n}


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def processes() -> Iterator[list[Any]]:
    started: list[Any] = []
    yield started
    for item in reversed(started):
        if isinstance(item, Server):
            item.ensure_gone()
        elif item.poll() is None:
            item.kill()
            item.wait()


def test_a_killed_server_restarted_on_its_file_finishes_the_run_exactly_once(
    tmp_path: Path, processes: list[Any]
) -> None:
    db, log, gate = tmp_path / "fake.db", tmp_path / "executions.log", tmp_path / "gate"
    os.mkfifo(gate)
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    first = Server(db, port, tmp_path / "server-1.err")
    processes.append(first)
    with (tmp_path / "runtime.err").open("w") as runtime_err:
        runtime = subprocess.Popen(
            [sys.executable, "-m", "tests.fake_state_manager.restart_runtime", str(log), str(gate)],
            cwd=ROOT,
            env={**_env(), "EXOSPHERE_STATE_MANAGER_URI": uri, "EXOSPHERE_API_KEY": KEY},
            stdout=subprocess.DEVNULL,
            stderr=runtime_err,
        )
    processes.append(runtime)
    client = httpx.Client(base_url=uri, headers={"x-api-key": KEY}, timeout=30)
    with client:
        _wait_until(
            lambda: len(client.get(f"{PREFIX}/nodes/").json()["nodes"]) == 3,
            "the runtime to register Fan, Work and Leaf",
        )
        graph = {
            "secrets": {"token": TOKEN},
            "nodes": [
                {"node_name": "Fan", "namespace": NAMESPACE, "identifier": "fan",
                 "inputs": {"n": str(ITEMS)}, "next_nodes": ["work"]},
                {"node_name": "Work", "namespace": NAMESPACE, "identifier": "work",
                 "inputs": {"i": "${{ fan.outputs.i }}"}, "next_nodes": ["leaf"]},
                {"node_name": "Leaf", "namespace": NAMESPACE, "identifier": "leaf",
                 "inputs": {"i": "${{ work.outputs.i }}"}},
            ],
        }
        client.put(f"{PREFIX}/graph/g", json=graph).raise_for_status()
        got = client.get(f"{PREFIX}/graph/g").json()
        assert got["validation_status"] == "VALID", got["validation_errors"]
        run_id = client.post(f"{PREFIX}/graph/g/trigger", json={}).json()["run_id"]

        # 1-2: everything but work 3 done and acknowledged; work 3 claimed and executing.
        held = {"SUCCESS": 1 + (ITEMS - 1) + (ITEMS - 1) * 2, "QUEUED": 1}
        _wait_until(
            lambda: _execution_summary(client, run_id) == held and f"held {HELD}" in _lines(log),
            f"every state but work {HELD} to finish",
        )
        before_kill = _lines(log)
        first.kill()

        # 3: the restarted server resumes from the file.
        second = Server(db, port, tmp_path / "server-2.err")
        processes.append(second)
        assert _execution_summary(client, run_id) == held
        assert _summary(client, run_id)["status"] == "PENDING"
        assert "keeping state in" in second.stderr()
        assert "1 run(s), 17 state(s) resumed" in second.stderr()
        assert _lines(log) == before_kill  # nothing ran again

        # 4: work 3 finishes against the new server, which creates and serves leaf 3.
        with gate.open("wb") as fifo:
            fifo.write(b"go")
        summary = _wait_until(
            lambda: (s := _summary(client, run_id))["status"] != "PENDING" and s,
            "the run to finish",
        )
    assert summary["status"] == "SUCCESS", summary
    assert summary["total_count"] == 1 + (ITEMS - 1) + ITEMS * 2
    executions = Counter(_lines(log))
    expected = Counter(
        ["fan", f"held {HELD}"]
        + [f"work {i}" for i in range(ITEMS)]
        + [f"leaf {i} {TOKEN}" for i in range(ITEMS)]
    )
    assert executions == expected  # each exactly once; leaf 3 read its secret after the restart
    runtime.send_signal(signal.SIGINT)
    runtime.wait(timeout=SAFETY_NET)
    assert second.stop() == 0, second.stderr()
    assert "Traceback" not in first.stderr_path.read_text() + second.stderr_path.read_text()
    assert not db.with_name(db.name + "-wal").exists()  # a clean stop folds the log in


def test_no_acknowledged_request_is_lost_to_a_kill(tmp_path: Path, processes: list[Any]) -> None:
    # A client triggers runs back to back; the server is killed while requests keep coming.
    # Every trigger that was answered must be in the file; at most the one in flight besides.
    db = tmp_path / "fake.db"
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    first = Server(db, port, tmp_path / "server-1.err")
    processes.append(first)
    acknowledged: list[str] = []
    stopped = threading.Event()

    def trigger_until_the_server_is_gone() -> None:
        with httpx.Client(base_url=uri, headers={"x-api-key": KEY}, timeout=30) as client:
            while not stopped.is_set():
                try:
                    response = client.post(f"{PREFIX}/graph/g/trigger", json={})
                except httpx.TransportError:
                    return
                acknowledged.append(response.raise_for_status().json()["run_id"])

    with httpx.Client(base_url=uri, headers={"x-api-key": KEY}, timeout=30) as client:
        node = {"name": "Only", "inputs_schema": {"type": "object", "properties": {}},
                "outputs_schema": {"type": "object", "properties": {}}, "secrets": []}
        registration = {"runtime_name": "t", "nodes": [node]}
        client.put(f"{PREFIX}/nodes/", json=registration).raise_for_status()
        graph = {"secrets": {}, "nodes": [{"node_name": "Only", "namespace": NAMESPACE,
                                           "identifier": "only", "inputs": {}}]}
        client.put(f"{PREFIX}/graph/g", json=graph).raise_for_status()
        assert client.get(f"{PREFIX}/graph/g").json()["validation_status"] == "VALID"
    sender = threading.Thread(target=trigger_until_the_server_is_gone)
    sender.start()
    try:
        _wait_until(lambda: len(acknowledged) >= 50, "50 acknowledged triggers")
        first.kill()
    finally:
        stopped.set()
        sender.join()
    answered = list(acknowledged)
    second = Server(db, port, tmp_path / "server-2.err")
    processes.append(second)
    with httpx.Client(base_url=uri, headers={"x-api-key": KEY}, timeout=30) as client:
        stored = client.get(f"{PREFIX}/runs/1/0").raise_for_status().json()
    kept = {run["run_id"] for run in stored["runs"]}
    assert set(answered) <= kept
    assert len(kept) - len(answered) in (0, 1)  # the request in flight, committed or not
    assert second.stop() == 0, second.stderr()

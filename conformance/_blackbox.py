"""Black-box mode: run a runtime as a subprocess against the fake on loopback, and observe it.

Nothing is injected into the runtime under test: it is any command that serves the test-service
catalogue (:mod:`conformance._catalogue`) given the environment of
:data:`conformance.service.ENV` plus the SDK's ``EXOSPHERE_STATE_MANAGER_URI`` and
``EXOSPHERE_API_KEY``. One scenario, :func:`run_blackbox`:

1. serves a fresh :class:`~fake_state_manager.FakeStateManager` on 127.0.0.1 with the system
   clock, its app wrapped in a :class:`~conformance._tap.ServerTap`;
2. seeds it through the public API, as any client would: registers the catalogue's nodes under
   the name ``conformance-seed`` (graph verification needs them, contract §4.4), upserts one
   single-node graph per node used, and triggers one run per case (``case`` input = case id).
   Seeding first means the runtime's first poll sees all the work, and a runtime that registers
   wrongly (rule R1) does not also invalidate every graph;
3. arms the tap (recording and the scenario's faults start now) and starts the command in its
   own process group, with stdout and stderr to files;
4. waits, on the tap's condition (every exchange wakes it), until the scenario's goal (every
   run finished, or a number of idle polls), the process exits, or nothing but idle polls has
   happened for ``settle`` seconds (a runtime that lost a state never finishes, and should not
   cost the hang guard);
5. sends SIGTERM to the process group and waits ``exit_timeout`` seconds for it to exit
   (SIGKILL after that);
6. returns a :class:`BlackBoxObservation`: the tap's exchanges, the fake's own request log, the
   executions from the record file, the runs' final statuses, and how the process ended.

Every time is the wall clock (``time.time()``): the fake's SystemClock in this process, and the
nodes' records in the runtime's, so they order against each other on one machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from conformance._catalogue import (
    CATALOGUE,
    SECRET_VALUE,
    ExecutionRecord,
    ServiceCase,
    node_spec,
    read_records,
)
from conformance._recording import Exchange
from conformance._seeding import graph_body, registration_body, trigger_body, unexpected
from conformance._tap import ServerTap
from conformance.service import ENV

__all__ = [
    "BlackBoxObservation",
    "BlackBoxScenario",
    "HarnessError",
    "RuntimeCommand",
    "run_blackbox",
    "sdk_command",
]

RuntimeCommand = str | Sequence[str]
"""A shell command line (run with ``/bin/sh -c``) or an argv list."""


# A Python exception line ("pkg.SomeError: text"), else any line that says error or exception.
_EXCEPTION_LINE = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt|Group)\b(:|$| \()")
_ERROR_WORD = re.compile(r"\b(error|exception|failed)\b", re.IGNORECASE)


class HarnessError(RuntimeError):
    """The suite itself could not run a scenario (not a verdict on the runtime)."""


def sdk_command(
    sdk: str, *, python: str | None = None, runtime_class: str | None = None
) -> list[str]:
    """The argv that serves the catalogue with ``sdk`` (``exo_ref`` or ``exospherehost``)."""
    argv = [python or sys.executable, "-m", "conformance.service", "--sdk", sdk]
    if runtime_class is not None:
        argv += ["--runtime-class", runtime_class]
    return argv


@dataclass(frozen=True)
class BlackBoxScenario:
    """One black-box run: the cases to trigger, the runtime's settings, faults and the goal.

    Attributes:
        name: shown in reports.
        purpose: one line for the docs and the report.
        cases: one run each.
        batch_size, workers, poll_interval: passed to the runtime (``EXO_CONFORMANCE_*``).
        faults: request kind -> the faults the tap answers its first requests with (``None`` =
            pass it on), e.g. ``{"enqueue": ("status_503",) * 4}``.
        idle_polls: when > 0 the goal is this many idle polls (no cases needed), and the stop is
            timed right after one, so that rule T4 can be judged (see :func:`run_blackbox`).
        invalid_node: serve ``BrokenNode`` too: the runtime must refuse to start (rule R3).
        exit_timeout: seconds the process gets to exit after SIGTERM (rule L2).
        hang_guard: real seconds after which the scenario gives up waiting (a safety net).
        focus: the rules the scenario is designed to judge (it judges every rule it can; a
            passing rule's reason in the report is taken from a scenario focused on it).
    """

    name: str
    purpose: str
    focus: tuple[str, ...] = ()
    cases: tuple[ServiceCase, ...] = ()
    batch_size: int = 4
    workers: int = 2
    poll_interval: float = 0.2
    faults: Mapping[str, Sequence[str | None]] = field(default_factory=dict)
    idle_polls: int = 0
    invalid_node: bool = False
    exit_timeout: float = 10.0
    hang_guard: float = 60.0

    @property
    def settle(self) -> float:
        """Seconds of nothing but idle polls after which a scenario stops waiting for its goal.

        Longer than any one execution (a Sleep or a blocking node) and any delay the fake keeps
        a state waiting (a re-enqueue, a retry's 50 ms backoff) plus a few poll intervals, so a
        runtime still making progress is never cut short; short enough that one which lost a
        state costs seconds, not the hang guard.
        """
        longest = max((max(c.seconds, c.delay) for c in self.cases), default=0.0)
        return 2.0 + 5 * self.poll_interval + longest

    def shape(self) -> str:
        """The settings in one phrase, for reports."""
        return (
            f"batch_size={self.batch_size}, workers={self.workers},"
            f" poll_interval={self.poll_interval}"
        )


@dataclass
class BlackBoxObservation:
    """What one black-box scenario recorded, handed to the judges (:mod:`conformance._judges`).

    Attributes:
        exchanges: every request the runtime made, as the tap saw it (arrival order).
        server_log: the fake's own request log for the runtime's requests (``RecordedRequest``).
        executions: the catalogue nodes' records, one per execution.
        runs: case id -> run id; ``final``: case id -> run status when the runtime was stopped.
        reached: the scenario's goal was reached (every run finished / enough idle polls).
        stop_at: when SIGTERM was sent (None if the process had already exited).
        stop_after_poll: seconds between the idle poll the stop was timed after and the stop.
        exit_code: the process's status (negative: killed by that signal), None if unknown.
        exited_early: the process exited before it was stopped.
        exit_seconds: seconds from SIGTERM to the exit.
        killed: it did not exit within ``exit_timeout`` and was killed.
        stderr: the tail of the process's stderr.
    """

    scenario: BlackBoxScenario
    command: str
    namespace: str
    runtime_name: str
    exchanges: list[Exchange]
    server_log: list[Any]
    executions: list[ExecutionRecord]
    runs: dict[str, str]
    final: dict[str, str]
    reached: bool
    started_at: float
    stop_at: float | None = None
    stop_after_poll: float | None = None
    exit_code: int | None = None
    exited_early: bool = False
    exit_seconds: float | None = None
    killed: bool = False
    stderr: str = ""
    duration: float = 0.0

    @property
    def polls(self) -> list[Exchange]:
        """The runtime's enqueue requests, in arrival order."""
        return [x for x in self.exchanges if x.kind == "enqueue"]

    def stderr_line(self) -> str:
        """What a crash said: the last line of stderr naming an error, else the last line.

        Exception groups draw boxes (``| ``, ``+---``) around their tracebacks: stripped.
        """
        lines = [line.strip().lstrip("|+-").strip() for line in self.stderr.splitlines()]
        lines = [line for line in lines if line]
        for pattern in (_EXCEPTION_LINE.match, _ERROR_WORD.search):
            found = [line for line in lines if pattern(line)]
            if found:
                return found[-1][:300]
        return lines[-1][:300] if lines else ""


def _expect(reply: httpx.Response, status: int, what: str) -> None:
    problem = unexpected(reply, status)
    if problem is not None:
        raise HarnessError(f"could not {what}: {problem}")


def _graph_name(case: ServiceCase) -> str:
    return f"g-{case.node}-r{case.retries}"


def _seed(client: httpx.Client, namespace: str, cases: Sequence[ServiceCase]) -> dict[str, str]:
    """Register the catalogue, upsert one graph per (node, retries), trigger each case."""
    base = f"/v0/namespace/{namespace}"
    reply = client.put(f"{base}/nodes/", json=registration_body("conformance-seed", CATALOGUE))
    _expect(reply, 200, "register the catalogue")
    for graph in sorted({_graph_name(c) for c in cases}):
        case = next(c for c in cases if _graph_name(c) == graph)
        spec = node_spec(case.node)
        body = graph_body(
            namespace,
            spec,
            secrets={name: SECRET_VALUE for name in spec.secrets},
            # FIXED 50 ms: a retried case costs little real time (contract §5).
            retry_policy={"max_retries": case.retries, "strategy": "FIXED", "backoff_factor": 50},
        )
        _expect(client.put(f"{base}/graph/{graph}", json=body), 201, f"upsert graph {graph}")
        deadline = time.monotonic() + 30.0
        while True:  # verification is asynchronous on a real server (contract §4.4)
            reply = client.get(f"{base}/graph/{graph}")
            _expect(reply, 200, f"read graph {graph}")
            status = reply.json().get("validation_status")
            if status != "PENDING" or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        if status != "VALID":
            raise HarnessError(
                f"graph {graph} is {status}: {reply.json().get('validation_errors')}"
            )
    runs: dict[str, str] = {}
    for case in cases:
        reply = client.post(
            f"{base}/graph/{_graph_name(case)}/trigger",
            json=trigger_body(case.trigger_inputs()),
        )
        _expect(reply, 200, f"trigger case {case.case_id}")
        runs[case.case_id] = str(reply.json()["run_id"])
    return runs


def _idle(x: Exchange) -> bool:
    """An answered poll that handed out nothing."""
    return x.kind == "enqueue" and x.ok and x.done_at is not None and not x.claimed()


def _tail(path: Path, limit: int = 20_000) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-limit:].decode("utf-8", "replace")


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just exited
        os.killpg(process.pid, signum)


class _Waiter:
    """Waits on the tap for a condition, checking the process and the hang guard meanwhile."""

    def __init__(self, tap: ServerTap, process: subprocess.Popen[bytes], guard: float) -> None:
        self.tap = tap
        self.process = process
        self.guard = guard

    def until(
        self, done: Callable[[list[Exchange]], bool], *, timeout: float | None = None
    ) -> bool:
        """Wait until ``done(exchanges)``; False when the process exits first or time runs out.

        The tap's condition wakes this on every exchange; the 0.1 s slices only notice a
        process exit (which nothing signals here) and the deadline.
        """
        end = min(self.guard, time.monotonic() + (timeout if timeout is not None else 1e9))
        version = self.tap.version
        while True:
            if done(self.tap.snapshot()):
                return True
            if self.process.poll() is not None or time.monotonic() >= end:
                return done(self.tap.snapshot())
            version = self.tap.wait_change(version, 0.1)


def run_blackbox(
    command: RuntimeCommand,
    scenario: BlackBoxScenario,
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> BlackBoxObservation:
    """Run ``scenario`` against the runtime ``command`` starts; see the module docstring.

    Raises:
        HarnessError: the fake could not be seeded, or the tap and the fake's own request log
            disagree (the observation could not be trusted).
    """
    from exo_ref import SystemClock
    from fake_state_manager import FakeStateManager

    clock = SystemClock()
    sm = FakeStateManager(clock=clock, seed=0, api_key=f"key-{uuid.uuid4().hex}")
    tap = sm.wrap(lambda app: ServerTap(app, clock.now))
    begun = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        folder = Path(tmp)
        record = folder / "records.jsonl"
        obs = _serve_and_drive(command, scenario, sm, tap, folder, env, cwd)
        obs.stderr = _tail(folder / "stderr.txt")
        obs.executions = read_records(record)
    _check_tap_agrees(obs)
    obs.duration = time.monotonic() - begun
    return obs


def _serve_and_drive(
    command: RuntimeCommand,
    scenario: BlackBoxScenario,
    sm: Any,
    tap: ServerTap,
    folder: Path,
    env: Mapping[str, str] | None,
    cwd: str | None,
) -> BlackBoxObservation:
    """Steps 1-5 of the module docstring; the logs are read once the server has shut down.

    (The server thread records an exchange's answer, and the fake logs the request, as it
    finishes sending it: after the runtime may already have it, and even after the runtime
    has exited. Joining the server first means every exchange is complete when read.)
    """
    shown = command if isinstance(command, str) else shlex.join(command)
    clock = sm.clock
    namespace = f"conformance-{uuid.uuid4().hex[:12]}"
    runtime_name = "conformance-runtime"
    record = folder / "records.jsonl"
    with sm.serve_in_thread() as uri:
        with httpx.Client(base_url=uri, headers={"x-api-key": sm.api_key}, timeout=30.0) as client:
            runs = {} if scenario.invalid_node else _seed(client, namespace, scenario.cases)
        armed_at = clock.now()
        tap.arm(scenario.faults)
        child_env = {
            **os.environ,
            **(env or {}),
            "EXOSPHERE_STATE_MANAGER_URI": uri,
            "EXOSPHERE_API_KEY": sm.api_key,
            ENV["namespace"]: namespace,
            ENV["runtime_name"]: runtime_name,
            ENV["batch_size"]: str(scenario.batch_size),
            ENV["workers"]: str(scenario.workers),
            ENV["poll_interval"]: str(scenario.poll_interval),
            ENV["record"]: str(record),
            ENV["invalid_node"]: "1" if scenario.invalid_node else "0",
            "PYTHONUNBUFFERED": "1",
        }
        stdout_path, stderr_path = folder / "stdout.txt", folder / "stderr.txt"
        with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
            process = subprocess.Popen(
                command,
                shell=isinstance(command, str),
                env=child_env,
                cwd=cwd,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: SIGTERM reaches a shell's child
            )
        started_at = clock.now()
        obs = BlackBoxObservation(
            scenario, shown, namespace, runtime_name, [], [], [], runs, {}, False, started_at
        )
        try:
            _drive(obs, sm, tap, process)
        finally:
            if process.poll() is None:
                _signal_group(process, signal.SIGKILL)
                process.wait()
    obs.exchanges = tap.snapshot()
    obs.server_log = [
        r
        for r in list(sm.requests)
        if r.time >= armed_at and r.path.startswith(f"/v0/namespace/{namespace}/")
    ]
    return obs


def _drive(
    obs: BlackBoxObservation, sm: Any, tap: ServerTap, process: subprocess.Popen[bytes]
) -> None:
    """Steps 4 and 5 of the module docstring: wait for the goal, then stop the process."""
    scenario = obs.scenario
    waiter = _Waiter(tap, process, time.monotonic() + scenario.hang_guard)
    if scenario.invalid_node:
        # A runtime must refuse at once; one that serves anyway shows itself by a request.
        waiter.until(lambda xs: bool(xs), timeout=30.0)
    elif scenario.idle_polls:
        obs.reached = waiter.until(lambda xs: sum(map(_idle, xs)) >= scenario.idle_polls)
    else:

        def finished(_: list[Exchange]) -> bool:
            return all(_status(sm, run) != "PENDING" for run in obs.runs.values())

        def settled(xs: list[Exchange]) -> bool:
            # Idle polls after the last claim or report: alive with nothing left to do. A runtime
            # that went silent altogether gets three times as long before it is given up on.
            last = max((x.sent_at for x in xs if not _idle(x)), default=obs.started_at)
            quiet = time.time() - last
            return finished(xs) or (
                quiet > scenario.settle and (_polling(xs, last) or quiet > 3 * scenario.settle)
            )

        waiter.until(settled)
        obs.reached = finished([])
    obs.final = {case: _status(sm, run) for case, run in obs.runs.items()}
    if process.poll() is not None:
        obs.exited_early = True
        obs.exit_code = process.returncode
        return
    if scenario.idle_polls:
        _stop_after_idle_poll(obs, waiter)
    obs.stop_at = time.time()
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(scenario.exit_timeout)
    except subprocess.TimeoutExpired:
        obs.killed = True
        _signal_group(process, signal.SIGKILL)
        process.wait()
    obs.exit_code = process.returncode
    obs.exit_seconds = time.time() - obs.stop_at


def _polling(xs: list[Exchange], since: float) -> bool:
    """The runtime polled (idly) after ``since``: it is alive and has nothing left to do."""
    return any(_idle(x) and x.sent_at > since for x in xs)


def _stop_after_idle_poll(obs: BlackBoxObservation, waiter: _Waiter) -> None:
    """Time the stop to land right after an idle poll was answered.

    A correct runtime then sleeps ``poll_interval`` before its next poll, so no poll of its can
    be in flight when SIGTERM arrives, and any poll the server gets afterwards was sent after
    the stop (rule T4). If this process was slow to notice the poll (more than a quarter of an
    interval late), it waits for the next one instead of risking a poll in flight.
    """
    interval = obs.scenario.poll_interval
    for _ in range(20):
        seen = sum(map(_idle, waiter.tap.snapshot()))

        def another(xs: list[Exchange], seen: int = seen) -> bool:
            return sum(map(_idle, xs)) > seen

        if not waiter.until(another, timeout=10 * interval + 5):
            return
        last = [x for x in waiter.tap.snapshot() if _idle(x)][-1]
        assert last.done_at is not None
        late = time.time() - last.done_at
        if late < interval / 4:
            obs.stop_after_poll = late
            return


def _status(sm: Any, run_id: str) -> str:
    try:
        return str(sm.run_summary(run_id)["status"])
    except LookupError:
        return "UNKNOWN"


def _check_tap_agrees(obs: BlackBoxObservation) -> None:
    """The fake's own request log holds exactly the requests the tap passed on (method, path,
    status), so what the judges read from the tap is what the state manager received."""
    from collections import Counter

    def key(method: str, path: str, status: int | None) -> tuple[str, str, int | None]:
        return method, path.rstrip("/"), status

    tapped = Counter(key(x.method, x.path, x.status) for x in obs.exchanges if x.forwarded)
    tapped_ns = Counter(
        {k: n for k, n in tapped.items() if k[1].startswith(f"/v0/namespace/{obs.namespace}")}
    )
    logged = Counter(key(r.method, r.path, r.status) for r in obs.server_log)
    if tapped_ns != logged:
        raise HarnessError(
            "the tap and the fake's request log disagree:"
            f" only tapped {dict(tapped_ns - logged)}, only logged {dict(logged - tapped_ns)}"
        )

"""The test-service catalogue: node types with specified behaviour, for black-box conformance.

A runtime under black-box test serves these nodes (implemented in its own SDK: the ones for SDKs
with the ``exospherehost`` API are in :mod:`conformance.service`); the suite triggers runs of them
and judges what reaches the state manager. The spec here is language-neutral data, so that any
SDK can implement it from ``docs/conformance.md`` alone, and the judges derive every expected
report from it (nothing is read from the SDK's own classes).

Conventions every node follows:

- every field (inputs, outputs, secrets) is a string (contract §4.4, §8.2);
- every node has an input ``case``, unique per triggered run, echoed as the output ``case`` where
  the node has outputs, and written into the record file;
- every execution appends two JSON lines to the file named by ``EXO_CONFORMANCE_RECORD`` (when
  set): ``{"event": "start", ...}`` when ``execute`` begins and ``{"event": "end", ...}`` when it
  returns or raises (:data:`RECORD_FIELDS`). The suite reads them for concurrency and
  claimed-but-unstarted counts, which no request shows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CATALOGUE",
    "INVALID_NODE",
    "RECORD_FIELDS",
    "SECRET_VALUE",
    "ExecutionRecord",
    "Expected",
    "NodeSpec",
    "ServiceCase",
    "expected_reports",
    "node_spec",
    "read_records",
    "secret_digest",
]

#: The value the suite stores for the ``token`` secret of every graph that needs it.
SECRET_VALUE = "conformance-secret-token-7f3a"

#: What each record line carries: ``event`` ("start" or "end"), ``node`` (class name), ``case``
#: (the ``case`` input), ``execution`` (an id unique to this execution, the same on its start
#: and end), ``time`` (wall clock, seconds since the Unix epoch, float), and on "end" only
#: ``outcome`` ("returned" or "raised"; signals count as raised).
RECORD_FIELDS = ("event", "node", "case", "execution", "time", "outcome")


@dataclass(frozen=True)
class NodeSpec:
    """One catalogue node: its name, fields, and what ``execute`` does.

    Attributes:
        name: the node (class) name the runtime registers.
        inputs: input field names (``case`` first).
        outputs: output field names.
        secrets: secret names.
        sync: ``execute`` blocks its thread (a plain ``def`` in Python) instead of awaiting.
        behaviour: one sentence for the docs: what an execution does.
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    secrets: tuple[str, ...] = ()
    sync: bool = False
    behaviour: str = ""


CATALOGUE: tuple[NodeSpec, ...] = (
    NodeSpec(
        "Echo",
        ("case", "text"),
        ("case", "text"),
        behaviour="returns one output `{case, text}` with the inputs unchanged",
    ),
    NodeSpec(
        "FanOut",
        ("case", "count"),
        ("case", "index"),
        behaviour='returns `int(count)` outputs `{case, index}` with index `"0"`, `"1"`, ...',
    ),
    NodeSpec(
        "Nothing",
        ("case",),
        (),
        behaviour="returns nothing (Python: `None`): executed with no outputs",
    ),
    NodeSpec(
        "Fail",
        ("case", "message"),
        ("case",),
        behaviour="raises an error whose message is exactly `message`",
    ),
    NodeSpec(
        "FailTimes",
        ("case", "times"),
        ("case", "attempts"),
        behaviour="the first `int(times)` executions with this `case` (counted in the runtime"
        " process) raise `attempt K of CASE fails` (K = 1, 2, ...); later ones return"
        " `{case, attempts: str(K)}`",
    ),
    NodeSpec(
        "Prune",
        ("case",),
        ("case",),
        behaviour='raises the SDK\'s prune signal with data `{"case": case}`',
    ),
    NodeSpec(
        "Requeue",
        ("case", "delay_ms"),
        ("case",),
        behaviour="the first execution with this `case` raises the re-enqueue signal with a delay"
        " of `int(delay_ms)` milliseconds; later ones return `{case}`",
    ),
    NodeSpec(
        "Sleep",
        ("case", "seconds"),
        ("case",),
        behaviour="waits `float(seconds)` without blocking other work (Python: `await"
        " asyncio.sleep`), then returns `{case}`",
    ),
    NodeSpec(
        "SyncBlock",
        ("case", "seconds"),
        ("case",),
        sync=True,
        behaviour="blocks its thread for `float(seconds)` (Python: a plain `def execute` calling"
        " `time.sleep`), then returns `{case}`",
    ),
    NodeSpec(
        "UseSecret",
        ("case",),
        ("case", "digest"),
        secrets=("token",),
        behaviour="returns `{case, digest}`, digest = the first 16 hex digits of SHA-256 of the"
        " secret `token` (UTF-8)",
    ),
)

#: Added to the served nodes when ``EXO_CONFORMANCE_INVALID_NODE=1``: its input ``count`` is not a
#: string, so the runtime must refuse to start (rule R3) and name the class and the field.
INVALID_NODE = NodeSpec(
    "BrokenNode",
    ("case", "count"),
    ("case",),
    behaviour="invalid on purpose: the input `count` is an integer, not a string",
)


def node_spec(name: str) -> NodeSpec:
    """The catalogue entry called ``name``."""
    for spec in CATALOGUE:
        if spec.name == name:
            return spec
    raise KeyError(f"no catalogue node {name!r}; the catalogue has {[s.name for s in CATALOGUE]}")


def secret_digest(value: str = SECRET_VALUE) -> str:
    """What ``UseSecret`` returns as ``digest`` for the secret ``value``."""
    return hashlib.sha256(value.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ServiceCase:
    """One triggered run of a catalogue node.

    Attributes:
        case_id: the ``case`` input (unique in the scenario).
        node: the catalogue node name.
        inputs: the other inputs (strings).
        retries: the graph's ``max_retries`` (FIXED 50 ms backoff); 0 makes an error final.
    """

    case_id: str
    node: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    retries: int = 0

    def trigger_inputs(self) -> dict[str, str]:
        """The inputs the run is triggered with."""
        return {"case": self.case_id, **self.inputs}

    @property
    def seconds(self) -> float:
        """How long one execution waits (Sleep, SyncBlock), else 0."""
        return float(self.inputs.get("seconds", 0.0))

    @property
    def delay(self) -> float:
        """The re-enqueue delay in seconds (Requeue), else 0."""
        return int(self.inputs.get("delay_ms", 0)) / 1000


@dataclass(frozen=True)
class Expected:
    """The applied reports a case must end with, in order: ``(kind, body)`` pairs."""

    reports: tuple[tuple[str, Any], ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind, _ in self.reports)

    @property
    def bodies(self) -> tuple[Any, ...]:
        return tuple(body for _, body in self.reports)


def expected_reports(case: ServiceCase) -> Expected:
    """The reports a correct runtime makes for ``case`` (contract §8.3, §6), over all its states."""
    c = case.case_id
    ins = case.inputs
    node = case.node
    if node == "Echo":
        return Expected((("executed", {"outputs": [{"case": c, "text": ins["text"]}]}),))
    if node == "FanOut":
        items = [{"case": c, "index": str(i)} for i in range(int(ins["count"]))]
        return Expected((("executed", {"outputs": items}),))
    if node == "Nothing":
        return Expected((("executed", {"outputs": []}),))
    if node == "Fail":
        return Expected((("errored", {"error": ins["message"]}),))
    if node == "FailTimes":
        times = int(ins["times"])
        errors = tuple(
            ("errored", {"error": f"attempt {k} of {c} fails"}) for k in range(1, times + 1)
        )
        if times > case.retries:
            return Expected(errors[: case.retries + 1])
        done = {"outputs": [{"case": c, "attempts": str(times + 1)}]}
        return Expected((*errors, ("executed", done)))
    if node == "Prune":
        return Expected((("prune", {"data": {"case": c}}),))
    if node == "Requeue":
        requeue = ("re-enqueue-after", {"enqueue_after": int(ins["delay_ms"])})
        return Expected((requeue, ("executed", {"outputs": [{"case": c}]})))
    if node == "UseSecret":
        digest = secret_digest()
        return Expected((("executed", {"outputs": [{"case": c, "digest": digest}]}),))
    if node in ("Sleep", "SyncBlock"):
        return Expected((("executed", {"outputs": [{"case": c}]}),))
    raise KeyError(f"no expected outcome for node {node!r}")


@dataclass
class ExecutionRecord:
    """One execution as the record file tells it (``end`` is None if it never ended)."""

    node: str
    case: str
    execution: str
    start: float
    end: float | None = None
    outcome: str | None = None


def read_records(path: Path) -> list[ExecutionRecord]:
    """Pair the start and end lines of the record file into executions, by start time.

    A line that is not a JSON object (e.g. half written when the process was killed) is skipped.
    """
    executions: dict[str, ExecutionRecord] = {}
    if not path.exists():
        return []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        key = str(event.get("execution"))
        if event.get("event") == "start":
            executions[key] = ExecutionRecord(
                str(event.get("node")), str(event.get("case")), key, float(event["time"])
            )
        elif event.get("event") == "end" and key in executions:
            executions[key].end = float(event["time"])
            executions[key].outcome = str(event.get("outcome"))
    return sorted(executions.values(), key=lambda e: e.start)

"""Generated node classes with a built-in probe, and what each case must end in.

A scenario is a set of :class:`NodeShape` (field names of ``Inputs``/``Outputs``/``Secrets``,
sync or async ``execute``) and :class:`Case` s: one triggered state each, carrying its case id in
every input field, with a :class:`Behaviour` for its first execution. Later executions of the
same case (after a re-enqueue) return one output. The probe records the start and end of every
execution in the scenario's :class:`~conformance._recording.EventLog`, which is how concurrency
and "claimed but unstarted" are measured.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

import anyio
from pydantic import BaseModel, create_model

from conformance._catalogue import Expected
from conformance._recording import EventLog
from conformance._targets import RuntimeTarget

__all__ = [
    "Behaviour",
    "BehaviourKind",
    "Case",
    "NodeShape",
    "Probe",
    "build_nodes",
    "expected_outcome",
    "output_values",
    "secret_value",
]

BehaviourKind = Literal["one", "many", "none", "raise", "prune", "requeue", "sleep", "gate"]


@dataclass(frozen=True)
class Behaviour:
    """What a case does on its first execution.

    ``one``/``many``/``none``: return one output, ``count`` outputs (fan-out), or None.
    ``raise``: raise ``RuntimeError(message)``. ``prune``: raise the prune signal with
    ``{"case": id}``. ``requeue``: raise the re-enqueue signal with ``delay_ms``. ``sleep``: wait
    ``seconds`` on the scenario clock, then return one output (async nodes only). ``gate``: wait
    until the probe's gate opens (an anyio event for async nodes, a threading event for sync
    ones, i.e. a synchronous block), then return one output.
    """

    kind: BehaviourKind
    count: int = 0
    message: str = ""
    delay_ms: int = 0
    seconds: float = 0.0

    @property
    def instant(self) -> bool:
        """Finishes without waiting on the clock or a gate."""
        return self.kind not in ("sleep", "gate")


@dataclass(frozen=True)
class NodeShape:
    """A node class to generate: its name, its field names, and whether execute is sync."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()
    sync: bool = False


@dataclass(frozen=True)
class Case:
    """One triggered state: its id (the value of every input field), its node and behaviour."""

    case_id: str
    node: str
    behaviour: Behaviour


def secret_value(name: str) -> str:
    """The value the harness stores for graph secret ``name``."""
    return f"secret-value-of-{name}"


def output_values(shape: NodeShape, case_id: str, index: int) -> dict[str, str]:
    """The output a case returns as item ``index``."""
    return {name: f"{case_id}:{name}:{index}" for name in shape.outputs}


def expected_outcome(shape: NodeShape, case: Case) -> Expected:
    """The reports a correct runtime makes for ``case``, in order (only 2xx ones count)."""
    behaviour = case.behaviour
    one = {"outputs": [output_values(shape, case.case_id, 0)]}
    if behaviour.kind == "many":
        outputs = [output_values(shape, case.case_id, i) for i in range(behaviour.count)]
        return Expected((("executed", {"outputs": outputs}),))
    if behaviour.kind == "none":
        return Expected((("executed", {"outputs": []}),))
    if behaviour.kind == "raise":
        return Expected((("errored", {"error": behaviour.message}),))
    if behaviour.kind == "prune":
        return Expected((("prune", {"data": {"case": case.case_id}}),))
    if behaviour.kind == "requeue":
        requeue = ("re-enqueue-after", {"enqueue_after": behaviour.delay_ms})
        return Expected((requeue, ("executed", one)))
    return Expected((("executed", one),))


@dataclass
class Probe:
    """Shared by the generated nodes of one scenario: the log, the cases, and the gates."""

    log: EventLog
    cases: dict[str, Case]
    target: RuntimeTarget
    sync_gate: threading.Event = field(default_factory=threading.Event)
    sync_gate_timeout: float = 5.0
    sync_gate_timed_out: bool = False
    _async_gate: anyio.Event | None = None

    def async_gate(self) -> anyio.Event:
        if self._async_gate is None:
            self._async_gate = anyio.Event()
        return self._async_gate

    def open_gates(self) -> None:
        self.async_gate().set()
        self.sync_gate.set()

    def begin(self, node: Any, shape: NodeShape) -> tuple[Case, int, Any]:
        values = dict(node.inputs.model_dump()) if node.inputs is not None else {}
        case_id = next(iter(values.values()), "")
        case = self.cases.get(case_id)
        if case is None:
            raise RuntimeError(f"conformance probe: unknown case in inputs {values!r}")
        execution = self.log.start_execution(case_id)
        problems = [k for k, v in values.items() if v != case_id]
        problems += [s for s in shape.secrets if getattr(node.secrets, s, None) != secret_value(s)]
        if problems:
            self.log.end_execution(execution, "bad-inputs-or-secrets")
            raise RuntimeError(f"inputs or secrets not delivered as triggered: {problems}")
        return case, execution.attempt, execution

    @contextmanager
    def ending(self, execution: Any) -> Iterator[None]:
        """Log how ``execution`` ends: ``raised`` if the block raises, else ``returned``."""
        try:
            yield
        except BaseException:
            self.log.end_execution(execution, "raised")
            raise
        self.log.end_execution(execution, "returned")

    def finish(self, node_cls: Any, shape: NodeShape, case: Case, attempt: int) -> Any:
        behaviour = case.behaviour if attempt == 1 else Behaviour("one")
        outputs = node_cls.Outputs
        if behaviour.kind == "many":
            return [
                outputs(**output_values(shape, case.case_id, i)) for i in range(behaviour.count)
            ]
        if behaviour.kind == "none":
            return None
        if behaviour.kind == "raise":
            raise RuntimeError(behaviour.message)
        if behaviour.kind == "prune":
            raise self.target.prune_signal({"case": case.case_id})
        if behaviour.kind == "requeue":
            raise self.target.requeue_signal(timedelta(milliseconds=behaviour.delay_ms))
        return outputs(**output_values(shape, case.case_id, 0))


def _model(name: str, fields: Sequence[str], annotation: Any = str) -> type[BaseModel]:
    definitions: dict[str, Any] = {f: (annotation, ...) for f in fields}
    return create_model(name, __base__=BaseModel, **definitions)


def build_nodes(shapes: Sequence[NodeShape], probe: Probe) -> list[type[Any]]:
    """Node classes (subclasses of the target's ``base_node``) for ``shapes``, probe inside."""
    return [_build_node(shape, probe) for shape in shapes]


def _build_node(shape: NodeShape, probe: Probe) -> type[Any]:
    namespace: dict[str, Any] = {
        "Inputs": _model("Inputs", shape.inputs),
        "Outputs": _model("Outputs", shape.outputs),
        "Secrets": _model("Secrets", shape.secrets),
        "__module__": __name__,
        "__qualname__": shape.name,
    }
    cls: type[Any]
    if shape.sync:

        def execute_sync(self: Any) -> Any:
            case, attempt, execution = probe.begin(self, shape)
            with probe.ending(execution):
                gated = attempt == 1 and case.behaviour.kind == "gate"
                if gated and not probe.sync_gate.wait(timeout=probe.sync_gate_timeout):
                    probe.sync_gate_timed_out = True
                return probe.finish(cls, shape, case, attempt)

        namespace["execute"] = execute_sync
    else:

        async def execute_async(self: Any) -> Any:
            case, attempt, execution = probe.begin(self, shape)
            with probe.ending(execution):
                if attempt == 1 and case.behaviour.kind == "sleep":
                    await probe.log.clock.sleep(case.behaviour.seconds)
                if attempt == 1 and case.behaviour.kind == "gate":
                    await probe.async_gate().wait()
                return probe.finish(cls, shape, case, attempt)

        namespace["execute"] = execute_async
    cls = type(shape.name, (probe.target.base_node,), namespace)
    return cls


def build_invalid_node(
    target: RuntimeTarget, name: str, problem: str, field_name: str = "value"
) -> type[Any]:
    """A node class with one registration problem (contract §8.2), for the refusal rule R3.

    ``problem`` is one of ``not_subclass``, ``field_not_str``, ``outputs_not_model``,
    ``duplicate`` (a valid class whose name another node also uses).
    """

    async def execute(self: Any) -> None:
        return None

    body: dict[str, Any] = {
        "Inputs": _model("Inputs", (field_name,)),
        "Outputs": _model("Outputs", ()),
        "Secrets": _model("Secrets", ()),
        "execute": execute,
        "__module__": __name__,
        "__qualname__": name,
    }
    if problem == "not_subclass":
        return type(name, (), body)
    if problem == "field_not_str":
        body["Inputs"] = _model("Inputs", (field_name,), int)
    elif problem == "outputs_not_model":
        body["Outputs"] = type("Outputs", (), {})
    return type(name, (target.base_node,), body)

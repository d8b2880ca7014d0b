"""hypothesis strategies for conformance scenarios, public as ``conformance.scenarios`` etc.

Node shapes (field names of ``Inputs``/``Outputs``/``Secrets``, sync or async ``execute``),
settings (batch size, workers, poll interval), cases with per-state behaviours (one output, many,
none, raise, prune, re-enqueue, sleep) and fault plans for the fault transport.

A user points them at their own runtime in an ordinary hypothesis test::

    from hypothesis import given
    import conformance

    TARGET = conformance.RuntimeTarget(name="mine", make=..., base_node=..., ...)

    @given(scenario=conformance.scenarios(TARGET))
    async def test_my_runtime(scenario: conformance.Scenario) -> None:
        await conformance.check_scenario(TARGET, conformance.in_process_fake(), scenario)

:func:`scenarios` is the whole package; :func:`node_shapes`, :func:`node_shape_sets`,
:func:`behaviours` and :func:`fault_plans` build a :class:`~conformance.Scenario` by hand (or
feed :func:`~conformance.check_registration`), and :func:`invalid_node_problems` feeds
:func:`~conformance.check_invalid_nodes_refused`.
"""

from __future__ import annotations

import keyword

from hypothesis import strategies as st
from pydantic import BaseModel

from conformance._faults import FaultKind, FaultPlan
from conformance._harness import Scenario
from conformance._nodes import Behaviour, Case, NodeShape
from conformance._targets import RuntimeTarget

__all__ = [
    "behaviours",
    "fault_plans",
    "field_names",
    "invalid_node_problems",
    "node_shape_sets",
    "node_shapes",
    "scenarios",
]

_RESERVED = frozenset(dir(BaseModel)) | {"case", "schema", "json", "dict", "copy"}


def _usable(name: str) -> bool:
    return not keyword.iskeyword(name) and not name.startswith("model") and name not in _RESERVED


def field_names() -> st.SearchStrategy[str]:
    """Lower-case identifiers that pydantic accepts as field names without warnings."""
    return st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(_usable)


@st.composite
def node_shapes(
    draw: st.DrawFn, name: str, *, sync_allowed: bool = True, min_inputs: int = 1
) -> NodeShape:
    """A :class:`~conformance.NodeShape` called ``name``: ``min_inputs``-3 inputs, 0-3 outputs,
    0-2 secrets (distinct :func:`field_names` each), a sync ``execute`` only if ``sync_allowed``.

    Pass ``sync_allowed=target.sync_nodes`` for a runtime that only supports ``async def``.
    """
    unique = st.lists(field_names(), unique=True)
    inputs = draw(st.lists(field_names(), min_size=min_inputs, max_size=3, unique=True))
    outputs = draw(unique.filter(lambda xs: len(xs) <= 3))
    secrets = draw(unique.filter(lambda xs: len(xs) <= 2))
    sync = draw(st.booleans()) if sync_allowed else False
    return NodeShape(name, tuple(inputs), tuple(outputs), tuple(secrets), sync)


@st.composite
def node_shape_sets(
    draw: st.DrawFn, *, max_size: int = 3, sync_allowed: bool = True, min_inputs: int = 0
) -> tuple[NodeShape, ...]:
    """1 to ``max_size`` :func:`node_shapes` named ``Shape0``, ``Shape1``, ...: the node classes
    one runtime registers together, e.g. for :func:`~conformance.check_registration`."""
    count = draw(st.integers(1, max_size))
    return tuple(
        draw(node_shapes(f"Shape{i}", sync_allowed=sync_allowed, min_inputs=min_inputs))
        for i in range(count)
    )


def behaviours(
    *, sync: bool, instant_only: bool = False, min_requeue_ms: int | None = 1
) -> st.SearchStrategy[Behaviour]:
    """A :class:`~conformance.Behaviour` for a case's first execution: one output, 2-4 outputs,
    none, raise, prune, or re-enqueue after ``min_requeue_ms``-``min_requeue_ms + 3000`` ms;
    ``sleep`` (on the scenario clock) only for async nodes (``sync=False``) and not when
    ``instant_only``; no re-enqueue when ``min_requeue_ms`` is None.

    Wrap it in :class:`~conformance.Case` with a node's name to build a scenario's cases."""
    options: list[st.SearchStrategy[Behaviour]] = [
        st.just(Behaviour("one")),
        st.integers(2, 4).map(lambda n: Behaviour("many", count=n)),
        st.just(Behaviour("none")),
        st.integers(0, 999).map(lambda n: Behaviour("raise", message=f"failure number {n}")),
        st.just(Behaviour("prune")),
    ]
    if min_requeue_ms is not None:
        options.append(
            st.integers(min_requeue_ms, min_requeue_ms + 3000).map(
                lambda ms: Behaviour("requeue", delay_ms=ms)
            )
        )
    if not sync and not instant_only:
        options.append(
            st.sampled_from([0.25, 1.0, 2.5, 7.0]).map(lambda s: Behaviour("sleep", seconds=s))
        )
    return st.one_of(options)


def fault_plans() -> st.SearchStrategy[FaultPlan]:
    """:class:`~conformance.FaultPlan` s for a scenario's ``faults``: 10-40% of requests fail
    (seeded, so a plan is reproducible), with a non-empty subset of the :class:`FaultKind` s."""
    return st.builds(
        FaultPlan,
        seed=st.integers(0, 2**16),
        rate=st.sampled_from([0.1, 0.25, 0.4]),
        kinds=st.lists(st.sampled_from(list(FaultKind)), min_size=1, max_size=4, unique=True).map(
            tuple
        ),
    )


@st.composite
def scenarios(
    draw: st.DrawFn,
    target: RuntimeTarget,
    *,
    max_cases: int = 8,
    faults: bool = False,
    instant_only: bool = False,
    poll_intervals: tuple[float, ...] = (0.5, 1.0, 2.5),
    requeue: bool = True,
) -> Scenario:
    """A whole :class:`~conformance.Scenario` for ``target``, ready for
    :func:`~conformance.check_scenario`: 1-2 node shapes (sync ones only where
    ``target.sync_nodes``), 0-``max_cases`` cases with :func:`behaviours`, batch size 1-6,
    1-4 workers and a poll interval from ``poll_intervals``.

    ``faults=True`` adds a :func:`fault_plans` plan; ``instant_only=True`` leaves out sleeping
    behaviours (so the runtime must re-poll at once after a full poll, rule T2);
    ``requeue=False`` leaves out the re-enqueue behaviour (its delays are long under faults,
    which costs real time against a real clock). Against a real-clock state manager, keep
    ``max_cases`` small and ``poll_intervals`` short."""
    count = draw(st.integers(1, 2))
    shapes = tuple(
        draw(node_shapes(f"Node{i}", sync_allowed=target.sync_nodes)) for i in range(count)
    )
    # Under faults a re-enqueue waits longer than any report retry, so a retried re-enqueue-after
    # cannot land after the state was claimed again (contract §2.11 has no precondition).
    min_requeue = (5000 if faults else 1) if requeue else None
    cases = []
    for i in range(draw(st.integers(0, max_cases))):
        shape = draw(st.sampled_from(shapes))
        behaviour = draw(
            behaviours(sync=shape.sync, instant_only=instant_only, min_requeue_ms=min_requeue)
        )
        cases.append(Case(f"case{i:03d}", shape.name, behaviour))
    plan = draw(fault_plans()) if faults else FaultPlan()
    return Scenario(
        shapes,
        tuple(cases),
        batch_size=draw(st.integers(1, 6)),
        workers=draw(st.integers(1, 4)),
        poll_interval=draw(st.sampled_from(poll_intervals)),
        faults=plan,
    )


@st.composite
def invalid_node_problems(
    draw: st.DrawFn, valid: tuple[NodeShape, ...]
) -> list[tuple[str, str, str]]:
    """1-3 invalid node classes to register next to ``valid``, as ``(name, problem, field)`` for
    :func:`~conformance.check_invalid_nodes_refused`. ``problem`` is ``not_subclass``,
    ``field_not_str``, ``outputs_not_model`` or ``duplicate`` (at most one, reusing a valid
    shape's name)."""
    kinds = ["not_subclass", "field_not_str", "outputs_not_model"]
    if valid:
        kinds.append("duplicate")
    problems: list[tuple[str, str, str]] = []
    for i in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(kinds))
        name = valid[0].name if kind == "duplicate" else f"Broken{i}"
        if kind == "duplicate" and any(p[1] == "duplicate" for p in problems):
            kind, name = "not_subclass", f"Broken{i}"
        problems.append((name, kind, draw(field_names())))
    return problems

"""The public strategies used the way a user holds their own runtime to the contract.

A user builds a :class:`conformance.RuntimeTarget` for their runtime (here exo_ref's) and draws
from ``conformance``'s strategies in ordinary async hypothesis tests, against the in-process fake.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import conformance

from ._support import examples

TARGET = conformance.exo_ref_target()


@settings(max_examples=examples(3))
@given(scenario=conformance.scenarios(TARGET, max_cases=4))
async def test_a_drawn_scenario_follows_every_rule(scenario: conformance.Scenario) -> None:
    await conformance.check_scenario(TARGET, conformance.in_process_fake(), scenario)


@st.composite
def hand_built_scenarios(draw: st.DrawFn) -> conformance.Scenario:
    """One node of the user's own naming, a few cases and a fault plan, from the parts."""
    shape = draw(conformance.node_shapes("Mine", sync_allowed=TARGET.sync_nodes))
    extra_output = draw(conformance.field_names().filter(lambda n: n not in shape.outputs))
    shape = conformance.NodeShape(
        shape.name, shape.inputs, (*shape.outputs, extra_output), shape.secrets, shape.sync
    )
    behaviours = draw(
        st.lists(conformance.behaviours(sync=shape.sync, min_requeue_ms=None), max_size=3)
    )
    cases = tuple(
        conformance.Case(f"mine{i}", shape.name, behaviour)
        for i, behaviour in enumerate(behaviours)
    )
    return conformance.Scenario(
        (shape,), cases, batch_size=2, workers=2, faults=draw(conformance.fault_plans())
    )


@settings(max_examples=examples(3))
@given(scenario=hand_built_scenarios())
async def test_a_hand_built_scenario_follows_every_rule(scenario: conformance.Scenario) -> None:
    await conformance.check_scenario(TARGET, conformance.in_process_fake(), scenario)


@settings(max_examples=examples(2))
@given(data=st.data())
async def test_drawn_registrations_are_checked(data: st.DataObject) -> None:
    shapes = data.draw(conformance.node_shape_sets(max_size=2))
    await conformance.check_registration(TARGET, conformance.in_process_fake(), shapes)
    problems = data.draw(conformance.invalid_node_problems(shapes))
    await conformance.check_invalid_nodes_refused(
        TARGET, conformance.in_process_fake(), shapes, problems
    )

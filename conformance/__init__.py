"""Property-based conformance checks: hold any Exosphere runtime to the wire contract.

Each check takes factories (a :class:`RuntimeTarget` and a :data:`StateManagerFactory`), runs a
scenario and raises ``AssertionError`` whose message names the violated rule, e.g.
``batching rule B2: 17 claimed-but-unstarted states exceed batch_size=16``. Rules by area:

- registration (R1-R3): :mod:`conformance._registration`
- batching (B1-B3): :mod:`conformance._batching`
- worker concurrency (W1-W3): :mod:`conformance._concurrency`
- poll timing (T1-T4): :mod:`conformance._timing`
- error reporting (E1-E3): :mod:`conformance._errors`

Scenarios come from public hypothesis strategies (:func:`scenarios`, built from
:func:`node_shapes`, :func:`node_shape_sets`, :func:`behaviours`, :func:`fault_plans` and
:func:`field_names`; :func:`invalid_node_problems` for refused registrations). A user holds their
own runtime to the contract by drawing from them in a hypothesis test::

    @given(scenario=conformance.scenarios(MY_TARGET))
    async def test_my_runtime(scenario: conformance.Scenario) -> None:
        await conformance.check_scenario(MY_TARGET, conformance.in_process_fake(), scenario)

Observation is through recording transports, a fault-injecting transport and a probe inside
generated nodes.
"""

from __future__ import annotations

from conformance._batching import assert_batching as assert_batching
from conformance._builtin import exo_ref_target as exo_ref_target
from conformance._builtin import in_process_fake as in_process_fake
from conformance._builtin import live_state_manager as live_state_manager
from conformance._builtin import served_fake as served_fake
from conformance._concurrency import assert_max_concurrency as assert_max_concurrency
from conformance._concurrency import (
    check_concurrency_reaches_workers as check_concurrency_reaches_workers,
)
from conformance._concurrency import (
    check_sync_node_does_not_stall as check_sync_node_does_not_stall,
)
from conformance._errors import assert_outcomes as assert_outcomes
from conformance._faults import FaultAction as FaultAction
from conformance._faults import FaultKind as FaultKind
from conformance._faults import FaultPlan as FaultPlan
from conformance._faults import FaultTransport as FaultTransport
from conformance._harness import Observation as Observation
from conformance._harness import Scenario as Scenario
from conformance._harness import run_scenario as run_scenario
from conformance._nodes import Behaviour as Behaviour
from conformance._nodes import Case as Case
from conformance._nodes import NodeShape as NodeShape
from conformance._recording import EventLog as EventLog
from conformance._recording import Exchange as Exchange
from conformance._recording import RecordingTransport as RecordingTransport
from conformance._registration import assert_registration as assert_registration
from conformance._registration import check_invalid_nodes_refused as check_invalid_nodes_refused
from conformance._registration import check_registration as check_registration
from conformance._scenarios import behaviours as behaviours
from conformance._scenarios import fault_plans as fault_plans
from conformance._scenarios import field_names as field_names
from conformance._scenarios import invalid_node_problems as invalid_node_problems
from conformance._scenarios import node_shape_sets as node_shape_sets
from conformance._scenarios import node_shapes as node_shapes
from conformance._scenarios import scenarios as scenarios
from conformance._suite import assert_server_log_agrees as assert_server_log_agrees
from conformance._suite import check_scenario as check_scenario
from conformance._targets import RuntimeHandle as RuntimeHandle
from conformance._targets import RuntimeSettings as RuntimeSettings
from conformance._targets import RuntimeTarget as RuntimeTarget
from conformance._targets import StateManagerFactory as StateManagerFactory
from conformance._targets import StateManagerHandle as StateManagerHandle
from conformance._timing import assert_poll_timing as assert_poll_timing
from conformance._timing import check_error_backoff as check_error_backoff
from conformance._timing import check_idle_poll_spacing as check_idle_poll_spacing
from conformance._timing import check_shutdown_stops_polling as check_shutdown_stops_polling

__all__ = [
    "Behaviour",
    "Case",
    "EventLog",
    "Exchange",
    "FaultAction",
    "FaultKind",
    "FaultPlan",
    "FaultTransport",
    "NodeShape",
    "Observation",
    "RecordingTransport",
    "RuntimeHandle",
    "RuntimeSettings",
    "RuntimeTarget",
    "Scenario",
    "StateManagerFactory",
    "StateManagerHandle",
    "assert_batching",
    "assert_max_concurrency",
    "assert_outcomes",
    "assert_poll_timing",
    "assert_registration",
    "assert_server_log_agrees",
    "behaviours",
    "check_concurrency_reaches_workers",
    "check_error_backoff",
    "check_idle_poll_spacing",
    "check_invalid_nodes_refused",
    "check_registration",
    "check_scenario",
    "check_shutdown_stops_polling",
    "check_sync_node_does_not_stall",
    "exo_ref_target",
    "fault_plans",
    "field_names",
    "in_process_fake",
    "invalid_node_problems",
    "live_state_manager",
    "node_shape_sets",
    "node_shapes",
    "run_scenario",
    "scenarios",
    "served_fake",
]

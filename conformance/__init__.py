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

    @pytest.mark.anyio  # anyio's pytest plugin runs the async test (or anyio_mode = "auto")
    @given(scenario=conformance.scenarios(MY_TARGET))
    async def test_my_runtime(scenario: conformance.Scenario) -> None:
        await conformance.check_scenario(MY_TARGET, conformance.in_process_fake(), scenario)

Observation is through recording transports, a fault-injecting transport and a probe inside
generated nodes.

**Black-box mode** (:func:`run_battery`, ``python -m conformance run``) needs nothing injected:
the runtime is any command serving the test-service :data:`CATALOGUE` (``python -m
conformance.service --sdk exo_ref|exospherehost`` for SDKs with the exospherehost API), run as a
subprocess against the fake served on loopback, and the same rules are judged from the state
manager's side (:mod:`conformance._judges`). See ``docs/conformance.md``.

Names are imported on first use (PEP 562), so ``conformance.service`` runs in an environment
with only an SDK installed, and the black-box mode does not need hypothesis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance._batching import assert_batching as assert_batching
    from conformance._battery import SCENARIOS as SCENARIOS
    from conformance._battery import BatteryReport as BatteryReport
    from conformance._battery import RuleResult as RuleResult
    from conformance._battery import run_battery as run_battery
    from conformance._blackbox import BlackBoxObservation as BlackBoxObservation
    from conformance._blackbox import BlackBoxScenario as BlackBoxScenario
    from conformance._blackbox import HarnessError as HarnessError
    from conformance._blackbox import run_blackbox as run_blackbox
    from conformance._blackbox import sdk_command as sdk_command
    from conformance._builtin import exo_ref_target as exo_ref_target
    from conformance._builtin import in_process_fake as in_process_fake
    from conformance._builtin import live_state_manager as live_state_manager
    from conformance._builtin import served_fake as served_fake
    from conformance._catalogue import CATALOGUE as CATALOGUE
    from conformance._catalogue import NodeSpec as NodeSpec
    from conformance._catalogue import ServiceCase as ServiceCase
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
    from conformance._judges import RULES as RULES
    from conformance._judges import Rule as Rule
    from conformance._judges import Verdict as Verdict
    from conformance._judges import judge as judge
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

# Each public name and the module that defines it.
_EXPORTS: dict[str, str] = {
    "BatteryReport": "conformance._battery",
    "Behaviour": "conformance._nodes",
    "BlackBoxObservation": "conformance._blackbox",
    "BlackBoxScenario": "conformance._blackbox",
    "CATALOGUE": "conformance._catalogue",
    "Case": "conformance._nodes",
    "EventLog": "conformance._recording",
    "Exchange": "conformance._recording",
    "FaultAction": "conformance._faults",
    "FaultKind": "conformance._faults",
    "FaultPlan": "conformance._faults",
    "FaultTransport": "conformance._faults",
    "HarnessError": "conformance._blackbox",
    "NodeShape": "conformance._nodes",
    "NodeSpec": "conformance._catalogue",
    "Observation": "conformance._harness",
    "RULES": "conformance._judges",
    "RecordingTransport": "conformance._recording",
    "Rule": "conformance._judges",
    "RuleResult": "conformance._battery",
    "RuntimeHandle": "conformance._targets",
    "RuntimeSettings": "conformance._targets",
    "RuntimeTarget": "conformance._targets",
    "SCENARIOS": "conformance._battery",
    "Scenario": "conformance._harness",
    "ServiceCase": "conformance._catalogue",
    "StateManagerFactory": "conformance._targets",
    "StateManagerHandle": "conformance._targets",
    "Verdict": "conformance._judges",
    "assert_batching": "conformance._batching",
    "assert_max_concurrency": "conformance._concurrency",
    "assert_outcomes": "conformance._errors",
    "assert_poll_timing": "conformance._timing",
    "assert_registration": "conformance._registration",
    "assert_server_log_agrees": "conformance._suite",
    "behaviours": "conformance._scenarios",
    "check_concurrency_reaches_workers": "conformance._concurrency",
    "check_error_backoff": "conformance._timing",
    "check_idle_poll_spacing": "conformance._timing",
    "check_invalid_nodes_refused": "conformance._registration",
    "check_registration": "conformance._registration",
    "check_scenario": "conformance._suite",
    "check_shutdown_stops_polling": "conformance._timing",
    "check_sync_node_does_not_stall": "conformance._concurrency",
    "exo_ref_target": "conformance._builtin",
    "fault_plans": "conformance._scenarios",
    "field_names": "conformance._scenarios",
    "in_process_fake": "conformance._builtin",
    "invalid_node_problems": "conformance._scenarios",
    "judge": "conformance._judges",
    "live_state_manager": "conformance._builtin",
    "node_shape_sets": "conformance._scenarios",
    "node_shapes": "conformance._scenarios",
    "run_battery": "conformance._battery",
    "run_blackbox": "conformance._blackbox",
    "run_scenario": "conformance._harness",
    "scenarios": "conformance._scenarios",
    "sdk_command": "conformance._blackbox",
    "served_fake": "conformance._builtin",
}

__all__ = [
    "CATALOGUE",
    "RULES",
    "SCENARIOS",
    "BatteryReport",
    "Behaviour",
    "BlackBoxObservation",
    "BlackBoxScenario",
    "Case",
    "EventLog",
    "Exchange",
    "FaultAction",
    "FaultKind",
    "FaultPlan",
    "FaultTransport",
    "HarnessError",
    "NodeShape",
    "NodeSpec",
    "Observation",
    "RecordingTransport",
    "Rule",
    "RuleResult",
    "RuntimeHandle",
    "RuntimeSettings",
    "RuntimeTarget",
    "Scenario",
    "ServiceCase",
    "StateManagerFactory",
    "StateManagerHandle",
    "Verdict",
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
    "judge",
    "live_state_manager",
    "node_shape_sets",
    "node_shapes",
    "run_battery",
    "run_blackbox",
    "run_scenario",
    "scenarios",
    "sdk_command",
    "served_fake",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use, then keep it here."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

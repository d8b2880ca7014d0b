"""The black-box battery: a few small scenarios that between them judge every rule.

Each scenario is a separate runtime process against a fresh fake (real clock, loopback), sized
to take a second or three of real time with a correct runtime: sleeps of tenths of a second and
poll intervals of 0.1-0.4 s (1 s where rule T2 needs a wide margin between "at once" and "one
interval later"). :func:`run_battery` runs them in order and folds the verdicts into one result
per rule: failed if any scenario failed it (the first failure's reason), else passed.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from conformance._blackbox import (
    BlackBoxObservation,
    BlackBoxScenario,
    RuntimeCommand,
    run_blackbox,
)
from conformance._catalogue import ServiceCase
from conformance._judges import RULES, Verdict, judge

__all__ = ["SCENARIOS", "BatteryReport", "RuleResult", "run_battery", "scenario_named"]


def _cases(node: str, count: int, prefix: str, **inputs: str) -> tuple[ServiceCase, ...]:
    return tuple(ServiceCase(f"{prefix}{i:02d}", node, inputs) for i in range(count))


# Each scenario's runtime settings stand on one line, as its report shows them (``shape()``).
SCENARIOS: tuple[BlackBoxScenario, ...] = (
    BlackBoxScenario(
        "idle",
        "no work: registration, idle poll spacing, and a stop timed right after an idle poll",
        focus=("R1", "R2", "T1", "T4", "L1", "L2"),
        # Half a second between polls: the SIGTERM, sent right after an idle poll, reaches a
        # correct runtime long before its next poll is due (rule T4).
        poll_interval=0.5,
        idle_polls=4,
    ),
    BlackBoxScenario(
        "burst",
        "9 instant states, 3 per poll: each full poll must be followed by the next at once",
        focus=("T2",),
        cases=tuple(ServiceCase(f"burst{i:02d}", "Echo", {"text": f"t{i}"}) for i in range(9)),
        batch_size=3, workers=3, poll_interval=1.0,
    ),
    BlackBoxScenario(
        "outcomes",
        "one case per behaviour: outputs, fan-out, none, error, retries, prune, re-enqueue, secret",
        focus=("B1", "B3", "E1"),
        cases=(
            ServiceCase("echo", "Echo", {"text": "hello"}),
            ServiceCase("fan", "FanOut", {"count": "3"}),
            ServiceCase("none", "Nothing"),
            ServiceCase("fail", "Fail", {"message": "boom: it failed"}),
            ServiceCase("flaky", "FailTimes", {"times": "2"}, retries=2),
            ServiceCase("prune", "Prune"),
            ServiceCase("requeue", "Requeue", {"delay_ms": "300"}),
            ServiceCase("secret", "UseSecret"),
        ),
        batch_size=4, workers=2, poll_interval=0.2,
    ),
    BlackBoxScenario(
        "batching",
        "8 sleeping states, one worker: how many claimed states wait unstarted",
        focus=("B2",),
        cases=_cases("Sleep", 8, "slow", seconds="0.35"),
        batch_size=4, workers=1, poll_interval=0.2,
    ),
    BlackBoxScenario(
        "concurrency",
        "6 sleeping states, three workers: concurrency must reach three and no more",
        focus=("W1", "W2"),
        cases=_cases("Sleep", 6, "nap", seconds="0.5"),
        batch_size=3, workers=3, poll_interval=0.2,
    ),
    BlackBoxScenario(
        "sync",
        "a synchronous execute blocks 1.5 s; five instant states must be reported meanwhile",
        focus=("W3",),
        cases=(
            ServiceCase("block", "SyncBlock", {"seconds": "1.5"}),
            *(ServiceCase(f"quick{i:02d}", "Echo", {"text": f"q{i}"}) for i in range(5)),
        ),
        batch_size=8, workers=2, poll_interval=0.2,
    ),
    BlackBoxScenario(
        "faults",
        "4 polls answered 503, then reports answered 503 or a 502 HTML page once each",
        focus=("T3", "E2", "E3"),
        cases=(
            ServiceCase("f-echo", "Echo", {"text": "x"}),
            ServiceCase("f-fan", "FanOut", {"count": "2"}),
            ServiceCase("f-fail", "Fail", {"message": "expected failure"}),
            ServiceCase("f-prune", "Prune"),
        ),
        batch_size=4,
        # One worker: states run one after another, so which report meets which fault is fixed.
        workers=1, poll_interval=0.1,
        faults={
            "enqueue": ("status_503",) * 4,
            "executed": ("status_503", "status_502_html"),
            "errored": ("status_503",),
            "prune": ("status_503",),
        },
    ),
    BlackBoxScenario(
        "invalid",
        "BrokenNode (an int input) is served too: the runtime must refuse to start",
        focus=("R3",),
        invalid_node=True,
    ),
)


def scenario_named(name: str) -> BlackBoxScenario:
    """The battery scenario called ``name``."""
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise KeyError(f"no scenario {name!r}; the battery has {[s.name for s in SCENARIOS]}")


@dataclass(frozen=True)
class RuleResult:
    """One rule over the whole battery.

    ``passed`` is None when no scenario judged it (e.g. only a subset of scenarios was run).
    """

    rule: str
    area: str
    title: str
    passed: bool | None
    reason: str
    scenarios: tuple[str, ...]

    @property
    def status(self) -> str:
        return {True: "pass", False: "FAIL", None: "not run"}[self.passed]

    def to_json(self) -> dict[str, Any]:
        """Every field (JSON-ready), and :attr:`status` for readers that want one word."""
        return {**asdict(self), "scenarios": list(self.scenarios), "status": self.status}


@dataclass
class BatteryReport:
    """The battery's result for one runtime: one :class:`RuleResult` per rule, and the runs."""

    runtime: str
    rules: list[RuleResult]
    observations: list[BlackBoxObservation] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every rule that was judged passed, and at least one was."""
        judged = [r for r in self.rules if r.passed is not None]
        return bool(judged) and all(r.passed for r in judged)

    @property
    def failed(self) -> list[str]:
        """The ids of the rules that failed."""
        return [r.rule for r in self.rules if r.passed is False]

    def result(self, rule: str) -> RuleResult:
        return next(r for r in self.rules if r.rule == rule)

    def assert_passed(self) -> None:
        """Raise ``AssertionError`` listing every failed rule with its reason (for pytest)."""
        if not self.passed:
            lines = [f"{r.area} rule {r.rule}: {r.reason}" for r in self.rules if r.passed is False]
            raise AssertionError(
                f"runtime {self.runtime} breaks {len(lines)} conformance rule(s):\n"
                + "\n".join(lines or ["no rule was judged"])
            )

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (``--json``)."""
        return {
            "runtime": self.runtime,
            "passed": self.passed,
            "failed": self.failed,
            "environment": self.environment,
            "rules": [r.to_json() for r in self.rules],
            "scenarios": [
                {
                    "name": o.scenario.name,
                    "purpose": o.scenario.purpose,
                    "settings": o.scenario.shape(),
                    "seconds": round(o.duration, 2),
                    "exit_code": o.exit_code,
                    "requests": len(o.exchanges),
                    "executions": len(o.executions),
                    "verdicts": [
                        {"rule": v.rule, "passed": v.passed, "reason": v.reason}
                        for v in self.verdicts
                        if v.scenario == o.scenario.name
                    ],
                }
                for o in self.observations
            ],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


def fold(runtime: str, verdicts: Sequence[Verdict]) -> list[RuleResult]:
    """One result per rule: the first failure's reason, else the most telling pass."""
    results = []
    for rule in RULES:
        mine = [v for v in verdicts if v.rule == rule.id]
        scenarios = tuple(dict.fromkeys(v.scenario for v in mine))
        failures = [v for v in mine if not v.passed]
        if failures:
            first = failures[0]
            more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
            reason = f"[{first.scenario}] {first.reason}{more}"
            results.append(RuleResult(rule.id, rule.area, rule.title, False, reason, scenarios))
        elif mine:
            focused = [v for v in mine if rule.id in _FOCUS.get(v.scenario, ())]
            best = (focused or mine)[0]
            reason = f"[{best.scenario}] {best.reason}"
            results.append(RuleResult(rule.id, rule.area, rule.title, True, reason, scenarios))
        else:
            results.append(RuleResult(rule.id, rule.area, rule.title, None, "not judged", ()))
    return results


_FOCUS = {scenario.name: scenario.focus for scenario in SCENARIOS}


def run_battery(
    command: RuntimeCommand,
    *,
    scenarios: Sequence[BlackBoxScenario] = SCENARIOS,
    label: str | None = None,
    cwd: str | None = None,
    progress: Callable[[BlackBoxObservation, list[Verdict]], None] | None = None,
) -> BatteryReport:
    """Run ``scenarios`` (default: the whole battery) against the runtime ``command`` starts.

    ``command`` is a shell command line or an argv list (see :func:`conformance.sdk_command`);
    ``progress`` is called after each scenario with its observation and verdicts.
    """
    observations: list[BlackBoxObservation] = []
    verdicts: list[Verdict] = []
    begun = time.monotonic()
    for scenario in scenarios:
        obs = run_blackbox(command, scenario, cwd=cwd)
        mine = judge(obs)
        observations.append(obs)
        verdicts.extend(mine)
        if progress is not None:
            progress(obs, mine)
    runtime = label or (observations[0].command if observations else str(command))
    report = BatteryReport(runtime, fold(runtime, verdicts), observations, verdicts)
    report.environment = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "seconds": f"{time.monotonic() - begun:.1f}",
    }
    return report

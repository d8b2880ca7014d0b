"""The rules of all five areas, judged from the state manager's side of a black-box run.

Same rule ids and meaning as the injected mode (the area modules' docstrings), measured only on
what the state manager and the catalogue nodes can see (:class:`BlackBoxObservation`):

- *requests and answers* at the state manager's door (the tap; times on the fake's clock),
  checked against the fake's own request log;
- *executions* from the record file the catalogue nodes append to (start, end, case);
- *the process*: when it exited and with what status, and its stderr.

What cannot be seen from there is left to the injected mode: the runtime's own sleeps (T2 is
judged on idle time instead), transport faults the runtime sees but the server does not (resets,
timeouts, lost answers: only 5xx answers and HTML error pages are injected here), and a
back-off cap that only shows after minutes of errors (T3 here checks growth only).

Timing tolerances are real-clock ones and deliberately generous, each justified where it is
defined: the suite must pass a correct runtime on a loaded two-core machine twenty runs in a row,
and every mutant it must catch misses its rule by a wide margin (tests/conformance/mutants.py).

Each judge returns ``(passed, reason)``, or None when the scenario gives it nothing to judge;
:func:`judge` makes the :class:`Verdict`, so a rule's id is written once, in ``_JUDGES``.
"""

from __future__ import annotations

import itertools
import json
import signal
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from conformance._blackbox import BlackBoxObservation
from conformance._catalogue import CATALOGUE, INVALID_NODE, expected_reports
from conformance._outcomes import (
    batch_size_error,
    claim_counts,
    collapse_requeues,
    peak_overlap,
    reports_by_state,
    same_report_body,
    unstarted_after_polls,
)
from conformance._recording import REPORT_KINDS, TERMINAL_KINDS, Exchange

__all__ = ["RULES", "Rule", "Verdict", "judge"]


@dataclass(frozen=True)
class Rule:
    """A rule's id, area and one-line statement (for tables and docs)."""

    id: str
    area: str
    title: str


RULES: tuple[Rule, ...] = (
    Rule(
        "R1",
        "registration",
        "registers the served nodes (names, string fields, secrets) before its first poll",
    ),
    Rule("R2", "registration", "every poll names exactly the registered nodes"),
    Rule(
        "R3",
        "registration",
        "refuses invalid node classes before any request, naming the class and field",
    ),
    Rule("B1", "batching", "no poll asks for more than batch_size states (nor fewer than 1)"),
    Rule(
        "B2",
        "batching",
        "claimed-but-unstarted states never exceed batch_size (+ workers being handed over)",
    ),
    Rule(
        "B3",
        "batching",
        "every claimed state gets exactly one terminal report, and only claimed states",
    ),
    Rule("W1", "concurrency", "never more than workers executions at once"),
    Rule("W2", "concurrency", "concurrency reaches min(workers, states available)"),
    Rule("W3", "concurrency", "a blocking synchronous execute does not stall the other states"),
    Rule("T1", "timing", "after an idle poll the next poll comes poll_interval later"),
    Rule(
        "T2", "timing", "after a poll that filled its request the next comes at once (unless busy)"
    ),
    Rule("T3", "timing", "after consecutive poll errors the spacing grows"),
    Rule("T4", "timing", "no poll after the runtime is told to stop"),
    Rule("E1", "error-reporting", "each behaviour ends in the right report with the right body"),
    Rule("E2", "error-reporting", "server faults (5xx, HTML error pages) lose no report"),
    Rule("E3", "error-reporting", "faults never turn one outcome into another"),
    Rule("L1", "lifecycle", "the runtime keeps running until it is stopped"),
    Rule("L2", "lifecycle", "the runtime exits promptly when told to stop (SIGTERM)"),
)
_BY_ID = {rule.id: rule for rule in RULES}


@dataclass(frozen=True)
class Verdict:
    """One rule judged on one scenario."""

    rule: str
    scenario: str
    passed: bool
    reason: str

    @property
    def area(self) -> str:
        return _BY_ID[self.rule].area

    def message(self) -> str:
        """``<area> rule <id>: <reason>``, the injected mode's wording."""
        return f"{self.area} rule {self.rule}: {self.reason}"


_Finding = tuple[bool, str]
"""What one judge found: passed or not, and why."""


def _no(reason: str) -> _Finding:
    return False, reason


def _yes(reason: str) -> _Finding:
    return True, reason


# -- tolerances ---------------------------------------------------------------------------------


def _early(interval: float) -> float:
    """How much sooner than ``poll_interval`` a poll may reach the server (T1).

    Arrival gaps differ from the runtime's sleep by the difference of two requests' latencies,
    which a stalled server thread (the fake shares this process's GIL) can skew by tens of
    milliseconds. An eager runtime polling at a quarter interval is still far below this.
    """
    return max(0.05, 0.25 * interval)


def _late(interval: float) -> float:
    """How much longer than ``poll_interval`` (after the answer) the next poll may take (T1's
    median), and how long a runtime may sit idle after a full poll (T2's median).

    Scheduling two processes on a loaded two-core machine can delay a wake-up by a few hundred
    milliseconds; half an interval above that floor still separates "at once" from a runtime
    that sleeps a whole interval (T2's scenario uses a 1 s interval), and "one interval" from
    two. Medians keep a single delayed wake-up from deciding either rule.
    """
    return max(0.3, 0.5 * interval)


#: Growth a real clock must show after consecutive poll errors (T3): the last spacing and the
#: mean of the last half at least this many times the first and the first half's mean. Doubling
#: back-off gives 4x and 2x over four errors even with 50% jitter; a constant back-off gives 1x
#: plus noise, which would need a 50% latency swing to pass.
_GROWTH = 1.5


# -- helpers ------------------------------------------------------------------------------------


def _state_cases(obs: BlackBoxObservation) -> dict[str, str]:
    """state id -> case id, from the states the polls handed out (their ``case`` input)."""
    mapping: dict[str, str] = {}
    for poll in obs.polls:
        for state in poll.claimed():
            inputs = state.get("inputs") or {}
            mapping[str(state.get("state_id"))] = str(inputs.get("case", ""))
    return mapping


def _describe(exchanges: Iterable[Exchange]) -> str:
    parts = [
        f"{x.kind} {json.dumps(x.request, sort_keys=True)[:120]} -> {x.status}"
        + (f" ({x.fault})" if x.fault else "")
        for x in exchanges
    ]
    return "; ".join(parts) or "nothing"


def _before_stop(obs: BlackBoxObservation, xs: Iterable[Exchange]) -> list[Exchange]:
    return [x for x in xs if obs.stop_at is None or x.sent_at < obs.stop_at]


def _has_faults(obs: BlackBoxObservation) -> bool:
    return any(x.fault for x in obs.exchanges)


# -- registration -------------------------------------------------------------------------------


def _string_schema(schema: Any, fields: tuple[str, ...]) -> str | None:
    """None if ``schema`` is an object schema with exactly ``fields``, each a string; else why."""
    if not isinstance(schema, dict):
        return f"is {schema!r}, not a JSON schema"
    props = schema.get("properties") or {}
    if not isinstance(props, dict) or sorted(props) != sorted(fields):
        shown = sorted(props) if isinstance(props, dict) else props
        return f"has properties {shown!r}, expected {sorted(fields)}"
    wrong = [f for f, p in props.items() if not isinstance(p, dict) or p.get("type") != "string"]
    if wrong:
        return f"types {wrong} as {[props[f] for f in wrong]}, expected strings"
    required = schema.get("required")
    if fields and required is not None and sorted(required) != sorted(fields):
        return f"requires {required}, expected {sorted(fields)}"
    return None


def _r1(obs: BlackBoxObservation) -> _Finding | None:
    if obs.scenario.invalid_node:
        return None
    first_poll = next((x.sent_seq for x in obs.polls), None)
    regs = [
        x
        for x in obs.exchanges
        if x.kind == "register" and (first_poll is None or x.sent_seq < first_poll)
    ]
    if not regs:
        return _no("no PUT .../nodes/ reached the server before the first poll")
    good = [x for x in regs if x.ok]
    if not good:
        return _no(f"registration before the first poll was refused: {_describe(regs)}")
    # Each accepted one: the server keeps the last, so a later one may undo a right first one.
    for number, reg in enumerate(good, 1):
        if problem := _registration_problem(obs, reg):
            which = "" if len(good) == 1 else f"registration {number} of {len(good)}: "
            return _no(which + problem)
    want = sorted(s.name for s in CATALOGUE)
    return _yes(
        f"registered the {len(want)} catalogue nodes as {obs.runtime_name!r} before its first poll"
        + (f" (each of {len(good)} registrations)" if len(good) > 1 else ""),
    )


def _registration_problem(obs: BlackBoxObservation, reg: Exchange) -> str | None:
    """What is wrong with one accepted registration (R1), or None."""
    body = reg.request if isinstance(reg.request, dict) else {}
    expected_path = f"/v0/namespace/{obs.namespace}/nodes"
    if reg.path.rstrip("/") != expected_path:
        return f"registered at {reg.path}, not {expected_path}/"
    if body.get("runtime_name") != obs.runtime_name:
        return f"runtime_name {body.get('runtime_name')!r}, expected {obs.runtime_name!r}"
    if body.get("runtime_namespace", obs.namespace) != obs.namespace:
        return f"runtime_namespace {body.get('runtime_namespace')!r} is not the namespace"
    nodes = body.get("nodes")
    if not isinstance(nodes, list) or not all(isinstance(n, dict) for n in nodes):
        return f"the registration's nodes are {nodes!r}, not a list of objects"
    names = sorted(str(n.get("name")) for n in nodes)
    want = sorted(s.name for s in CATALOGUE)
    if names != want:
        return f"registered nodes {names}, expected the catalogue {want}"
    for node in nodes:
        spec = next(s for s in CATALOGUE if s.name == node["name"])
        if node.get("namespace", obs.namespace) != obs.namespace:
            return f"node {spec.name} was sent with namespace {node.get('namespace')!r}"
        for key, fields in (("inputs_schema", spec.inputs), ("outputs_schema", spec.outputs)):
            problem = _string_schema(node.get(key), fields)
            if problem:
                return f"node {spec.name}: {key} {problem}"
        secrets = node.get("secrets")
        if not isinstance(secrets, list) or sorted(secrets) != sorted(spec.secrets):
            return f"node {spec.name}: secrets {secrets!r}, expected {list(spec.secrets)}"
    return None


def _r2(obs: BlackBoxObservation) -> _Finding | None:
    if not obs.polls:
        return None
    want = sorted(s.name for s in CATALOGUE)
    for poll in obs.polls:
        asked = poll.request.get("nodes") if isinstance(poll.request, dict) else None
        if not isinstance(asked, list) or sorted(asked) != want:
            return _no(
                f"a poll named nodes {asked!r}, expected the {len(want)} registered {want}",
            )
    return _yes(f"all {len(obs.polls)} polls named exactly the {len(want)} registered nodes")


def _r3(obs: BlackBoxObservation) -> _Finding | None:
    if not obs.scenario.invalid_node:
        return None
    if obs.exchanges:
        first = obs.exchanges[0]
        return _no(
            f"{len(obs.exchanges)} request(s) were sent with an invalid node class"
            f" ({first.method} {first.path} first)",
        )
    if not obs.exited_early:
        return _no("the runtime did not refuse to start with an invalid node class")
    if obs.exit_code == 0:
        return _no("the runtime exited with status 0 instead of failing")
    missing = [w for w in (INVALID_NODE.name, "count") if w not in obs.stderr]
    if missing:
        return _no(f"the error does not name {missing}: {obs.stderr_line()!r}")
    return _yes(
        f"refused to start (status {obs.exit_code}) before any request, naming"
        f" {INVALID_NODE.name} and 'count'",
    )


# -- batching -----------------------------------------------------------------------------------


def _b1(obs: BlackBoxObservation) -> _Finding | None:
    if not obs.polls:
        return None
    limit = obs.scenario.batch_size
    for poll in obs.polls:
        if problem := batch_size_error(poll.request, limit):
            return _no(f"a poll asked for {problem}")
    most = max(poll.request["batch_size"] for poll in obs.polls)
    return _yes(f"every poll asked for 1..{limit} states (at most {most})")


def _b2(obs: BlackBoxObservation) -> _Finding | None:
    if not any(p.claimed() for p in obs.polls):
        return None
    s = obs.scenario
    allowance = s.batch_size + s.workers
    unstarted = unstarted_after_polls(
        (
            (len(poll.claimed()), poll.done_at if poll.done_at is not None else poll.sent_at)
            for poll in obs.polls
        ),
        (e.start for e in obs.executions),
    )
    for count in unstarted:
        if count > allowance:
            return _no(
                f"{count} claimed-but-unstarted states exceed batch_size={s.batch_size}"
                f" (+{s.workers} being handed to workers) when a poll was answered",
            )
    return _yes(
        f"at most {max(unstarted)} claimed-but-unstarted states (limit {s.batch_size} +"
        f" {s.workers} workers)",
    )


def _b3(obs: BlackBoxObservation) -> _Finding | None:
    claims = claim_counts(obs.polls)
    if not claims and not obs.scenario.cases:
        return None
    cases = _state_cases(obs)
    if not claims:
        return _no(
            f"none of the {len(obs.scenario.cases)} triggered cases was claimed"
            + (" (the runtime exited first)" if obs.exited_early else "")
        )
    sent = reports_by_state(obs.exchanges, applied_only=False)
    for sid, xs in sent.items():
        if sid not in claims:  # the server refuses these, so only the sent ones show them
            return _no(f"state {sid} was reported ({xs[0].kind}) without being claimed")
        answered = next((x for x in xs if x.kind in TERMINAL_KINDS and x.ok), None)
        if answered is None:
            continue
        after = answered.done_seq or answered.sent_seq
        again = next((x for x in xs if x.kind in TERMINAL_KINDS and x.sent_seq > after), None)
        if again is not None:
            return _no(
                f"state {sid} (case {cases.get(sid)}) was reported {again.kind} again after"
                f" its {answered.kind} report was answered {answered.status}",
            )
    applied = reports_by_state(obs.exchanges, applied_only=True)
    for sid, xs in applied.items():
        terminal = [x.kind for x in xs if x.kind in TERMINAL_KINDS]
        if len(terminal) > 1:
            return _no(
                f"state {sid} (case {cases.get(sid)}) got {len(terminal)} applied terminal"
                f" reports {terminal}",
            )
    missing = [s for s in claims if not any(x.kind in TERMINAL_KINDS for x in applied.get(s, []))]
    if missing and not _has_faults(obs):  # under faults a lost report is rule E2's
        shown = ", ".join(f"{s} (case {cases.get(s)})" for s in missing[:3])
        return _no(f"{len(missing)} claimed state(s) never got a terminal report: {shown}")
    unclaimed = [c.case_id for c in obs.scenario.cases if c.case_id not in cases.values()]
    if unclaimed and not obs.exited_early:
        return _no(f"triggered cases were never claimed: {unclaimed[:5]}")
    return _yes(f"{len(claims)} claimed states, each with exactly one applied terminal report")


# -- concurrency --------------------------------------------------------------------------------


def _peak(obs: BlackBoxObservation) -> int:
    return peak_overlap((e.start, e.end) for e in obs.executions)


def _w1(obs: BlackBoxObservation) -> _Finding | None:
    if not obs.executions:
        return None
    peak, workers = _peak(obs), obs.scenario.workers
    if peak > workers:
        return _no(f"{peak} executions ran at once, more than workers={workers}")
    return _yes(f"peak concurrency {peak} (workers={workers})")


def _w2(obs: BlackBoxObservation) -> _Finding | None:
    sleeps = [c for c in obs.scenario.cases if c.node == "Sleep"]
    if len(sleeps) < 2 or obs.scenario.workers < 2:
        return None
    goal = min(obs.scenario.workers, len(sleeps))
    peak = _peak(obs)
    if peak < goal:
        return _no(
            f"only {peak} of {len(sleeps)} sleeping states ran at once; expected"
            f" min(workers, states) = {goal}",
        )
    return _yes(f"{peak} sleeping states ran at once = min(workers, states)")


def _w3(obs: BlackBoxObservation) -> _Finding | None:
    blockers = [c for c in obs.scenario.cases if c.node == "SyncBlock"]
    if not blockers:
        return None
    blocker = blockers[0]
    runs = [e for e in obs.executions if e.case == blocker.case_id]
    if not runs:
        return _no(f"the blocking SyncBlock state ({blocker.case_id}) never started")
    start, end = runs[0].start, runs[0].end
    until = end if end is not None else float("inf")
    cases = _state_cases(obs)
    others = {c.case_id for c in obs.scenario.cases if c is not blocker}
    done_in_time = set()
    for sid, xs in reports_by_state(obs.exchanges, applied_only=True).items():
        case = cases.get(sid)
        if case in others and any(x.kind in TERMINAL_KINDS and x.sent_at < until for x in xs):
            done_in_time.add(case)
    if done_in_time != others:
        return _no(
            f"a blocking synchronous execute() ({blocker.seconds} s) stalled the other states:"
            f" {len(done_in_time)} of {len(others)} were reported while it blocked",
        )
    during = sum(1 for e in obs.executions if e.case in others and e.start >= start)
    return _yes(
        f"all {len(others)} other states were reported while SyncBlock blocked"
        f" ({during} began during it)",
    )


# -- timing -------------------------------------------------------------------------------------


def _pairs(obs: BlackBoxObservation) -> list[tuple[Exchange, Exchange]]:
    polls = _before_stop(obs, obs.polls)
    return list(itertools.pairwise(polls))


def _t1(obs: BlackBoxObservation) -> _Finding | None:
    """No idle poll is followed early (any one is a failure), and the median wait after an idle
    poll's answer is ``poll_interval`` (judged on three gaps or more).

    Early is robust: a runtime that sleeps after the answer cannot reach the server sooner than
    ``poll_interval`` after the previous poll arrived (one clock, cause before effect). Late is
    not: one scheduling hiccup of the runtime, or of the fake's thread, delays one poll. The
    median ignores a hiccup, and still fails a runtime that waits too long every time.
    """
    interval = obs.scenario.poll_interval
    early, late = _early(interval), _late(interval)
    spacings, waits = [], []
    for a, b in _pairs(obs):
        if not (a.ok and a.done_at is not None and not a.claimed()):
            continue
        spacing = b.sent_at - a.sent_at
        spacings.append(spacing)
        waits.append(b.sent_at - a.done_at)
        if spacing < interval - early:
            return _no(
                f"an idle poll was followed by the next after {spacing:.3f} s, expected"
                f" poll_interval={interval} s (at most {early:.2f} s sooner)",
            )
    if obs.scenario.idle_polls and len(spacings) < obs.scenario.idle_polls - 1:
        idle = [p for p in _before_stop(obs, obs.polls) if p.ok and not p.claimed()]
        return _no(
            f"only {len(idle)} idle polls before the stop, expected {obs.scenario.idle_polls}"
            if idle
            else f"no idle poll before the stop, expected {obs.scenario.idle_polls}",
        )
    if not spacings:
        return None
    if len(waits) >= 3 and statistics.median(waits) > interval + late:
        return _no(
            f"after an idle poll the next came {statistics.median(waits):.3f} s later (median of"
            f" {len(waits)}), expected poll_interval={interval} s (at most {late:.2f} s later)",
        )
    return _yes(
        f"{len(spacings)} idle polls each followed {min(spacings):.2f}-{max(spacings):.2f} s"
        f" later (poll_interval={interval})",
    )


def _busy_intervals(obs: BlackBoxObservation) -> list[tuple[float, float]]:
    spans = [(e.start, e.end if e.end is not None else float("inf")) for e in obs.executions]
    spans += [
        (x.sent_at, x.done_at if x.done_at is not None else x.sent_at)
        for x in obs.exchanges
        if x.kind in REPORT_KINDS or x.kind == "secrets"
    ]
    return sorted(spans)


def _idle_time(window: tuple[float, float], spans: list[tuple[float, float]]) -> float:
    """Seconds of ``window`` covered by no span (no execution running, no report in flight)."""
    lo, hi = window
    covered, cursor = 0.0, lo
    for start, end in spans:
        start, end = max(start, cursor), min(end, hi)
        if end > start:
            covered += end - start
            cursor = end
    return max(0.0, (hi - lo) - covered)


def _t2(obs: BlackBoxObservation) -> _Finding | None:
    """The median idle time after a full poll is within the tolerance (one hiccup is not a
    failure; a runtime that sleeps after every full poll fails every time)."""
    if _has_faults(obs) or any(c.node in ("Sleep", "SyncBlock") for c in obs.scenario.cases):
        return None  # judged where every execution is instant and nothing fails
    late = _late(obs.scenario.poll_interval)
    spans = _busy_intervals(obs)
    idles: list[tuple[float, Exchange, Exchange]] = []
    for a, b in _pairs(obs):
        asked = a.request.get("batch_size") if isinstance(a.request, dict) else None
        got = len(a.claimed())
        if isinstance(asked, int) and got and got >= asked and a.done_at is not None:
            idles.append((_idle_time((a.done_at, b.sent_at), spans), a, b))
    if not idles:
        return None
    median = statistics.median(idle for idle, _, _ in idles)
    if median > late:
        idle, a, b = max(idles, key=lambda item: item[0])
        return _no(
            f"after a poll that filled its request ({len(a.claimed())} states) the next poll came"
            f" {b.sent_at - (a.done_at or a.sent_at):.3f} s later, {idle:.3f} s of it with"
            f" nothing running (median {median:.3f} s over {len(idles)} full polls);"
            f" expected at once (tolerance {late:.2f} s)",
        )
    worst = max(idle for idle, _, _ in idles)
    return _yes(
        f"each of {len(idles)} full polls was followed at once (at most {worst:.3f} s idle)",
    )


def _t3(obs: BlackBoxObservation) -> _Finding | None:
    polls = obs.polls
    errors = 0
    for poll in polls:
        if poll.fault is None:
            break
        errors += 1
    if errors < 2:
        return None
    if len(polls) < errors + 1:
        return _no(f"polling stopped after {len(polls)} polls during errors")
    spacing = [polls[i + 1].sent_at - polls[i].sent_at for i in range(errors)]
    half = max(1, len(spacing) // 2)
    first, last = spacing[:half], spacing[-half:]
    shown = ", ".join(f"{g:.3f}" for g in spacing)
    grows = spacing[-1] >= _GROWTH * spacing[0] and sum(last) / len(last) >= _GROWTH * sum(
        first
    ) / len(first)
    if len(spacing) >= 3:  # and still after the first: one quick retry, then a constant wait
        grows = grows and spacing[-1] >= _GROWTH * spacing[1]
    if not grows:
        return _no(f"spacing after {errors} consecutive poll errors does not grow: {shown} s")
    return _yes(f"spacing after {errors} consecutive poll errors grew: {shown} s")


def _t4(obs: BlackBoxObservation) -> _Finding | None:
    if not obs.scenario.idle_polls or obs.stop_at is None:
        return None
    if obs.stop_after_poll is None:
        return None  # the stop could not be timed after an idle poll: nothing fair to judge
    late = [x for x in obs.polls if x.sent_at >= obs.stop_at]
    if late:
        after = late[0].sent_at - obs.stop_at
        return _no(
            f"{len(late)} poll(s) reached the server after SIGTERM (the first {after:.3f} s after)",
        )
    return _yes(
        f"no poll after SIGTERM (sent {obs.stop_after_poll:.3f} s after an idle poll was answered)",
    )


# -- error reporting ----------------------------------------------------------------------------


def _outcomes(obs: BlackBoxObservation) -> _Finding | None:
    if not obs.scenario.cases:
        return None
    cases_of = _state_cases(obs)
    applied = reports_by_state(obs.exchanges, applied_only=True)
    sent = reports_by_state(obs.exchanges, applied_only=False)
    per_case: dict[str, list[Exchange]] = {}
    for sid, xs in applied.items():
        per_case.setdefault(cases_of.get(sid, "?"), []).extend(xs)
    wrong: list[str] = []
    first: str | None = None
    for case in obs.scenario.cases:
        want = expected_reports(case)
        collapsed = collapse_requeues(
            sorted(per_case.get(case.case_id, []), key=lambda x: x.sent_at)
        )
        kinds = tuple(x.kind for x in collapsed)
        if kinds == want.kinds and all(
            same_report_body(x.kind, x.request, body)
            for x, (_, body) in zip(collapsed, want.reports, strict=False)
        ):
            continue
        wrong.append(case.case_id)
        if first is None:
            attempts = [
                x for sid, xs in sent.items() if cases_of.get(sid) == case.case_id for x in xs
            ]
            expected = "; ".join(f"{k} {json.dumps(b, sort_keys=True)}" for k, b in want.reports)
            first = (
                f"case {case.case_id} ({case.node}) should end in {expected};"
                f" applied: {_describe(collapsed)}; sent: {_describe(attempts)}"
            )
    if first is not None:
        also = f" (also wrong: {', '.join(wrong[1:])})" if len(wrong) > 1 else ""
        return _no(first + also)
    faults = sum(1 for x in obs.exchanges if x.fault and x.kind in REPORT_KINDS)
    extra = f", {faults} report faults overcome" if faults else ""
    return _yes(f"all {len(obs.scenario.cases)} cases ended in their expected reports{extra}")


def _e1(obs: BlackBoxObservation) -> _Finding | None:
    return None if _has_faults(obs) else _outcomes(obs)


def _e2(obs: BlackBoxObservation) -> _Finding | None:
    if not any(x.fault and x.kind in REPORT_KINDS for x in obs.exchanges):
        return None
    return _outcomes(obs)


def _e3(obs: BlackBoxObservation) -> _Finding | None:
    sent = reports_by_state(obs.exchanges, applied_only=False)
    if not sent:
        return None
    cases = _state_cases(obs)
    for sid, xs in sent.items():
        distinct: list[tuple[str, str]] = []
        for x in xs:
            key = (x.kind, json.dumps(x.request, sort_keys=True))
            if x.kind in TERMINAL_KINDS and key not in distinct:
                distinct.append(key)
        if len(distinct) > 1:
            return _no(
                f"state {sid} (case {cases.get(sid)}) was reported as {[k for k, _ in distinct]}"
                f" with bodies {[b[:120] for _, b in distinct]};"
                " one outcome must not turn into another",
            )
    retried = sum(1 for xs in sent.values() if len(xs) > 1)
    return _yes(f"every state's reports kept one kind and body ({retried} states retried)")


# -- lifecycle ----------------------------------------------------------------------------------

_STOPPED = (0, -signal.SIGTERM, 128 + signal.SIGTERM)


def _l1(obs: BlackBoxObservation) -> _Finding | None:
    if obs.scenario.invalid_node:
        return None
    if obs.exited_early:
        return _no(
            f"the runtime exited with status {obs.exit_code} before it was stopped:"
            f" {obs.stderr_line()!r}",
        )
    if obs.exit_code not in _STOPPED and not obs.killed:
        return _no(
            f"the runtime exited with status {obs.exit_code} after SIGTERM: {obs.stderr_line()!r}",
        )
    return _yes(f"ran until stopped (exit status {obs.exit_code} after SIGTERM)")


def _l2(obs: BlackBoxObservation) -> _Finding | None:
    if obs.scenario.invalid_node or obs.stop_at is None:
        return None
    limit = obs.scenario.exit_timeout
    if obs.killed:
        return _no(f"still running {limit} s after SIGTERM (killed)")
    return _yes(f"exited {obs.exit_seconds or 0.0:.2f} s after SIGTERM")


# -- driver -------------------------------------------------------------------------------------


_JUDGES: dict[str, Callable[[BlackBoxObservation], _Finding | None]] = {
    "R1": _r1, "R2": _r2, "R3": _r3,
    "B1": _b1, "B2": _b2, "B3": _b3,
    "W1": _w1, "W2": _w2, "W3": _w3,
    "T1": _t1, "T2": _t2, "T3": _t3, "T4": _t4,
    "E1": _e1, "E2": _e2, "E3": _e3,
    "L1": _l1, "L2": _l2,
}  # fmt: skip


def judge(obs: BlackBoxObservation) -> list[Verdict]:
    """Every rule the observation gives something to judge, in :data:`RULES` order."""
    verdicts = []
    for rule in RULES:
        finding = _JUDGES[rule.id](obs)
        if finding is not None:
            verdicts.append(Verdict(rule.id, obs.scenario.name, *finding))
    return verdicts

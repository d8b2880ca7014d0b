"""``python -m conformance``: run the black-box battery against a runtime, or regenerate the docs.

::

    python -m conformance run --sdk exo_ref               # exit 0 only if every rule passes
    python -m conformance run --sdk exospherehost         # needs exospherehost (Python 3.12)
    python -m conformance run --runtime-cmd "node my-runtime.js" --json report.json
    python -m conformance report --out docs/conformance.md

``run`` prints one row per rule (pass/fail and a one-line reason) and exits 0 when all pass, 1
when any fails, 2 when the suite could not run (bad options, an SDK that is not installed, a
harness failure). ``report`` runs the battery for both SDKs and rewrites the report section of
the given Markdown file.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance._battery import SCENARIOS, BatteryReport, run_battery, scenario_named
from conformance._blackbox import BlackBoxObservation, HarnessError, RuntimeCommand, sdk_command
from conformance._judges import Verdict
from conformance._report import markdown, render_table, replace_section
from conformance.service import SDKS

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance",
        description="Black-box conformance of an Exosphere runtime, judged at the state manager.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="run the battery against a runtime and print every rule's result",
        description="Start the runtime once per scenario (a subprocess serving the test-service"
        " catalogue, docs/conformance.md), against the fake state manager on loopback.",
    )
    which = run.add_mutually_exclusive_group(required=True)
    which.add_argument("--sdk", choices=SDKS, help="serve with this SDK (conformance.service)")
    which.add_argument(
        "--runtime-cmd",
        metavar="CMD",
        help="a shell command that starts a runtime serving the catalogue; it gets the state"
        " manager's URI and key, the namespace and the settings in its environment",
    )
    run.add_argument(
        "--python",
        metavar="PATH",
        help="with --sdk: the interpreter that runs the SDK (default: this one)",
    )
    run.add_argument(
        "--scenario",
        action="append",
        choices=[s.name for s in SCENARIOS],
        help="run only this scenario (repeatable; default: all)",
    )
    run.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    report = sub.add_parser(
        "report",
        help="run the battery for exospherehost and exo_ref and rewrite the docs' report section",
    )
    report.add_argument("--out", default="docs/conformance.md", help="the Markdown file")
    report.add_argument(
        "--upstream-python",
        metavar="PATH",
        help="the interpreter that has exospherehost 0.0.3 (default: this one)",
    )
    return parser


def _progress(total: int, quiet: bool):  # type: ignore[no-untyped-def]
    done = 0

    def show(obs: BlackBoxObservation, verdicts: list[Verdict]) -> None:
        nonlocal done
        done += 1
        if quiet:
            return
        failed = [v.rule for v in verdicts if not v.passed]
        state = f"FAIL {', '.join(failed)}" if failed else "all pass"
        print(
            f"[{done}/{total}] {obs.scenario.name}: {len(verdicts)} rules judged, {state}"
            f" ({obs.duration:.1f} s)",
            file=sys.stderr,
            flush=True,
        )

    return show


def _sdk_available(sdk: str, python: str | None) -> bool:
    if python is None:
        return importlib.util.find_spec(sdk) is not None
    try:
        probe = subprocess.run(
            [python, "-c", f"import {sdk}, conformance.service"], capture_output=True, check=False
        )
    except OSError:  # no such interpreter
        return False
    return probe.returncode == 0


def _battery(
    command: RuntimeCommand, names: Sequence[str] | None, label: str, quiet: bool
) -> BatteryReport:
    scenarios = [scenario_named(n) for n in names] if names else list(SCENARIOS)
    return run_battery(
        command, scenarios=scenarios, label=label, progress=_progress(len(scenarios), quiet)
    )


def _run(args: argparse.Namespace) -> int:
    if args.sdk is not None:
        if not _sdk_available(args.sdk, args.python):
            where = args.python or sys.executable
            hint = " (exospherehost 0.0.3 needs Python 3.12)" if args.sdk == "exospherehost" else ""
            print(
                f"conformance: {args.sdk} (and conformance) cannot be imported by {where}{hint};"
                " install it there, pass --python, or use --runtime-cmd",
                file=sys.stderr,
            )
            return 2
        command: RuntimeCommand = sdk_command(args.sdk, python=args.python)
        label = f"python -m conformance.service --sdk {args.sdk}"
    else:
        command = label = args.runtime_cmd
    try:
        report = _battery(command, args.scenario, label, args.quiet)
    except HarnessError as error:
        print(f"conformance: the suite could not run: {error}", file=sys.stderr)
        return 2
    render_table(report, sys.stdout)
    if args.json:
        Path(args.json).write_text(report.dumps() + "\n", encoding="utf-8")
    return 0 if report.passed else 1


def _version(python: str | None, sdk: str) -> str:
    code = f"import {sdk}; print({sdk}.__version__)"
    result = subprocess.run(
        [python or sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "?"


def _report(args: argparse.Namespace) -> int:
    out = Path(args.out)
    document = out.read_text(encoding="utf-8")
    replace_section(document, [])  # fail before minutes of work if the markers are missing
    date = datetime.datetime.now(datetime.UTC).date().isoformat()
    sections = []
    for sdk, python, what in (
        ("exospherehost", args.upstream_python, "the upstream SDK"),
        ("exo_ref", None, "this repository's runtime"),
    ):
        if not _sdk_available(sdk, python):
            print(
                f"conformance: {sdk} is not importable by {python or sys.executable}",
                file=sys.stderr,
            )
            return 2
        print(f"conformance: {sdk} ({what})", file=sys.stderr)
        label = f"python -m conformance.service --sdk {sdk}"
        report = _battery(sdk_command(sdk, python=python), None, label, False)
        title = f"`{sdk}` {_version(python, sdk)} ({what})"
        sections.append(markdown(report, title=title, date=date))
    out.write_text(replace_section(document, sections), encoding="utf-8")
    print(f"conformance: wrote the report into {out}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m conformance``; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    return _report(args)

"""Showing a :class:`~conformance._battery.BatteryReport`: a terminal table, and Markdown.

The table uses ``rich`` when it can be imported (colour on a terminal, plain box text in a pipe)
and falls back to aligned plain text, so the suite needs nothing beyond its own dependencies.
The Markdown form is what ``python -m conformance report`` writes into ``docs/conformance.md``
between :data:`BEGIN` and :data:`END`.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Sequence
from typing import IO

from conformance._battery import BatteryReport

__all__ = ["BEGIN", "END", "markdown", "render_table", "replace_section"]

BEGIN = "<!-- BEGIN conformance report: regenerate with `python -m conformance report` -->"
END = "<!-- END conformance report -->"


def render_table(report: BatteryReport, out: IO[str]) -> None:
    """Print one row per rule (id, area, result, one-line reason) and a summary line."""
    try:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text
    except ImportError:
        _plain_table(report, out)
        return
    # In a pipe rich would assume 80 columns and wrap every reason; a log file is wider.
    terminal = out.isatty()
    console = Console(file=out, soft_wrap=False, width=None if terminal else 160)
    table = Table(title=f"conformance: {report.runtime}", title_justify="left", expand=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("area", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("reason", overflow="fold", ratio=1)
    styles = {"pass": "green", "FAIL": "bold red", "not run": "yellow"}
    for r in report.rules:
        table.add_row(r.rule, r.area, Text(r.status, style=styles[r.status]), Text(r.reason))
    console.print(table)
    console.print(_summary(report), style="green" if report.passed else "bold red", highlight=False)


def _plain_table(report: BatteryReport, out: IO[str]) -> None:
    width = max(60, shutil.get_terminal_size((120, 24)).columns)
    area = max(len(r.area) for r in report.rules)
    lead = 4 + 2 + area + 2 + 7 + 2
    out.write(f"conformance: {report.runtime}\n")
    out.write(f"{'rule':<4}  {'area':<{area}}  {'result':<7}  reason\n")
    for r in report.rules:
        lines = textwrap.wrap(r.reason, max(30, width - lead)) or [""]
        out.write(f"{r.rule:<4}  {r.area:<{area}}  {r.status:<7}  {lines[0]}\n")
        for more in lines[1:]:
            out.write(" " * lead + more + "\n")
    out.write(_summary(report) + "\n")


def _summary(report: BatteryReport) -> str:
    judged = [r for r in report.rules if r.passed is not None]
    seconds = report.environment.get("seconds", "?")
    if report.passed:
        return f"all {len(judged)} rules pass ({len(report.observations)} scenarios, {seconds} s)"
    if not judged:
        return "no rule was judged"
    return (
        f"{len(report.failed)} of {len(judged)} rules FAIL: {', '.join(report.failed)}"
        f" ({len(report.observations)} scenarios, {seconds} s)"
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: BatteryReport, *, title: str, date: str) -> str:
    """One SDK's section: a heading, the verdict, and the rule table with the evidence."""
    env = report.environment
    judged = [r for r in report.rules if r.passed is not None]
    if report.passed:
        verdict = f"**passes all {len(judged)} rules.**"
    else:
        verdict = (
            f"**breaks {len(report.failed)} of {len(judged)} rules: {', '.join(report.failed)}.**"
        )
    lines = [
        f"### {title}",
        "",
        f"Runtime `{report.runtime}`; Python {env.get('python', '?')} on"
        f" {env.get('platform', '?')}; {len(report.observations)} scenarios in"
        f" {env.get('seconds', '?')} s; generated {date}. It {verdict}",
        "",
        "| rule | area | result | evidence (scenario, what the state manager saw) |",
        "| --- | --- | --- | --- |",
    ]
    for r in report.rules:
        result = "**FAIL**" if r.passed is False else r.status
        lines.append(f"| {r.rule} | {r.area} | {result} | {_cell(r.reason)} |")
    return "\n".join(lines) + "\n"


def replace_section(document: str, sections: Sequence[str]) -> str:
    """``document`` with the text between :data:`BEGIN` and :data:`END` replaced by
    ``sections`` (joined by blank lines).

    Raises:
        ValueError: the markers are missing or out of order.
    """
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the document has no report section: add the lines\n{BEGIN}\n{END}")
    body = "\n".join(sections)
    return document[: start + len(BEGIN)] + "\n\n" + body + "\n" + document[end:]

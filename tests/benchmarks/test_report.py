"""``benchmarks/report.py``: RESULTS.md, the console's tables and the files ``main`` writes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from benchmarks import report
from tests.benchmarks._sample_runs import UPSTREAM_REASON, bench_json, sample_run


def _row(text: str, start: str) -> str:
    """The one line of ``text`` that starts with ``start``."""
    found = [line for line in text.splitlines() if line.startswith(start)]
    assert len(found) == 1, (start, found)
    return found[0]


def test_console_prints_the_targets_with_their_verdicts() -> None:
    out = report.console(sample_run(upstream=False))
    # floor CPU / exo_ref CPU = 90 / 100 >= 0.7
    met = _row(out, "exo_ref / floor, in-process, asyncio, tuned, N=1,000")
    assert met.split()[-4:] == ["0.90", ">=", "0.7", "MET"]
    # asyncio CPU / trio CPU = 100 / 200 < 0.75
    missed = _row(out, "exo_ref trio / asyncio, loopback, tuned, N=1,000")
    assert missed.rstrip().endswith("MISSED")
    assert "0.50" in missed
    missing = _row(out, "runtime CPU per state, exo_ref / upstream 0.0.3, loopback, tuned")
    assert missing.rstrip().endswith("MISSING")
    assert _row(out, "MISSING drain/upstream/tuned") == (
        f"MISSING drain/upstream/tuned: {UPSTREAM_REASON}"
    )
    # What limits a MISSED row is RESULTS.md's long text, not the console's.
    assert report.LIMITS["trio"] not in out


def test_console_columns_line_up() -> None:
    out = report.console(sample_run())
    lines = out.splitlines()
    header = lines.index(_row(out, "ratio"))
    rule = lines[header + 1]
    assert set(rule) == {"-", " "}
    verdict_column = rule.rindex(" ") + 1
    for line in lines[header + 2:]:
        if not line:
            break
        assert line[verdict_column - 2:verdict_column] == "  ", line
        assert line[verdict_column:].split()[0] in {"MET", "MISSED", "MISSING", "no"}


def test_console_shows_the_drain_table_with_cpu_per_state() -> None:
    out = report.console(sample_run())
    row = _row(out, "upstream ")
    assert row.split()[:4] == ["upstream", "loopback", "asyncio", "tuned"]
    # states/s, the runtime's and the server's CPU µs per state
    assert [cell for cell in row.split() if cell in {"500", "800", "300"}] == ["500", "800", "300"]


def test_results_md_gives_the_limit_of_a_missed_row_and_embeds_the_chart() -> None:
    text = report.render(sample_run(), chart="results.svg")
    row = _row(text, "| exo_ref trio / asyncio, loopback, tuned, N=1,000 ")
    assert f"MISSED ({report.LIMITS['trio']})" in row
    assert "](results.svg)" in text
    assert "(the run took 10 min)" in _row(text, "- Date (UTC): 2026-12-02T10:00:00+00:00")
    assert "WARNING: the machine was busy" not in text


def test_a_busy_machine_is_warned_about_in_every_output() -> None:
    data = sample_run(load=1.8)  # on 2 cores
    assert "WARNING: the machine was busy" in report.render(data)
    assert "WARNING: the machine was busy" in report.console(data)
    assert "WARNING: the machine was busy" in report.chart(data)


def test_an_empty_run_says_missing_instead_of_failing() -> None:
    data = bench_json([])
    text = report.render(data)
    assert "MISSING: no `fake/graph_upsert/...` figures in this run." in text
    assert "MISSING: no `drain/...` figures in this run." in text
    assert "| MET |" not in text
    assert "MISSING: no `drain/...` figures in this run." in report.console(data)
    svg = ET.fromstring(report.chart(data))
    assert svg.findall(".//{http://www.w3.org/2000/svg}rect[@class='bar']") == []


def test_main_writes_results_and_the_chart_and_prints_the_console_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bench.json"
    source.write_text(json.dumps(sample_run()), encoding="utf-8")
    results = tmp_path / "out" / "RESULTS.md"
    results.parent.mkdir()
    assert report.main([str(source), str(results)]) == 0
    assert "![" in results.read_text(encoding="utf-8")
    svg = ET.parse(results.with_name("results.svg")).getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    out = capsys.readouterr()
    assert out.out == report.console(sample_run())
    assert f"wrote {results}" in out.err


def test_main_without_a_file_prints_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([]) == 2
    assert "usage: python -m benchmarks.report" in capsys.readouterr().err

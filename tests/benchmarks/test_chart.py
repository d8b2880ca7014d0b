"""``benchmarks/_chart.py`` and the chart ``report.chart`` draws from a run's figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from benchmarks import report
from benchmarks._chart import Group, Panel, Series, grouped_bars, ticks
from tests.benchmarks._sample_runs import sample_run

SVG = "{http://www.w3.org/2000/svg}"


def _bars(svg: ET.Element) -> list[ET.Element]:
    return svg.findall(f".//{SVG}rect[@class='bar']")


def _texts(svg: ET.Element) -> list[str]:
    return [t.text or "" for t in svg.iter(f"{SVG}text")]


def test_chart_draws_each_contender_by_settings_with_a_legend() -> None:
    svg = ET.fromstring(report.chart(sample_run()))
    bars = _bars(svg)
    assert {b.get("data-series") for b in bars} == {"exo_ref", "floor", "upstream"}
    legend = {r.get("data-series") for r in svg.findall(f".//{SVG}rect[@class='legend']")}
    assert legend == {"exo_ref", "floor", "upstream"}
    texts = _texts(svg)
    assert "upstream exospherehost 0.0.3" in texts
    assert {"in-process, tuned", "loopback, tuned", "loopback, defaults"} <= set(texts)
    assert "64/16/0.05 s" in texts
    # The three panels: states/s, the runtime's CPU and the server's CPU per state.
    assert any(t.startswith("Drain throughput, states/s") for t in texts)
    assert any(t.startswith("Runtime process CPU per state") for t in texts)
    assert any(t.startswith("Server process CPU per state") for t in texts)
    # Upstream runs over loopback only: none of its bars is in process.
    assert all("loopback" in (b.get("data-group") or "")
               for b in bars if b.get("data-series") == "upstream")


def test_bar_heights_are_proportional_to_the_figures() -> None:
    svg = ET.fromstring(report.chart(sample_run()))
    states = [b for b in _bars(svg) if b.findtext(f"{SVG}title", "").endswith(
        ("1,250.00", "500.00"))]
    by_series = {b.get("data-series"): float(b.get("height") or 0) for b in states}
    assert by_series["exo_ref"] / by_series["upstream"] == pytest.approx(1250 / 500, rel=0.01)
    # Every bar is labelled with its value.
    assert "1,250" in _texts(svg)


def test_absent_series_and_panels_are_left_out() -> None:
    data = sample_run(upstream=False)
    for bench in data["benchmarks"]:
        for figure in bench["extra_info"]["figures"]:
            figure["server_cpu_us"] = None
    svg = ET.fromstring(report.chart(data))
    assert "upstream" not in {b.get("data-series") for b in _bars(svg)}
    assert "upstream" not in {
        r.get("data-series") for r in svg.findall(f".//{SVG}rect[@class='legend']")
    }
    texts = _texts(svg)
    assert "upstream exospherehost 0.0.3" not in texts
    assert not any(t.startswith("Server process CPU per state") for t in texts)
    # No figure at all for in-process defaults: that group is not drawn.
    assert "in-process, defaults" not in texts


def test_labels_are_escaped_into_well_formed_xml() -> None:
    series = [Series("a", "A <&> \"quoted\"", "#000000")]
    panel = Panel("p < q & r", [Group(("g & h", "<1>"), {"a": 3.0})])
    svg = ET.fromstring(grouped_bars("t & u", ["s < v"], series, [panel]))
    assert {"A <&> \"quoted\"", "p < q & r", "g & h", "<1>", "t & u", "s < v"} <= set(_texts(svg))


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        pytest.param(1234.0, [0, 250, 500, 750, 1000, 1250], id="quarter-thousands"),
        pytest.param(16.0, [0, 5, 10, 15, 20], id="fives"),
        pytest.param(100.0, [0, 20, 40, 60, 80, 100], id="exact-top"),
        pytest.param(0.0, [0, 1], id="nothing"),
    ],
)
def test_axis_ticks_are_round_and_reach_the_top(top: float, expected: list[float]) -> None:
    assert ticks(top) == pytest.approx(expected)

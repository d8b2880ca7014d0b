"""A grouped bar chart as SVG, written with the stdlib (``xml.etree``), for ``report.py``.

Panels stacked top to bottom share one legend; each panel has its own linear y axis starting at
zero, groups of bars along x, and every bar carries its value as a label (a bar 75 times shorter
than its neighbour is still read). A series with no value in a group has no bar there, a group
with no bar is left out of its panel, a panel with no group is left out, and the legend lists
only the series drawn. ElementTree escapes every label, so the output is well-formed XML.

Every bar is a ``<rect class="bar">`` with ``data-series`` and ``data-group`` attributes and a
``<title>`` (the exact value, shown on hover), so tests and readers can find the data again.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Group", "Panel", "Series", "grouped_bars"]

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 960
LEFT = 80  # room for the y axis values
RIGHT = 20
PLOT_HEIGHT = 170
PANEL_TITLE = 34  # above the plot
GROUP_LABELS = 44  # below the plot: two lines of group label
MAX_BAR = 48
GAP = 2  # between the bars of a group
STYLE = (
    "text { font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; font-size: 12px; "
    "fill: #222; } .title { font-size: 17px; font-weight: bold; } .subtitle { fill: #555; } "
    ".panel { font-size: 14px; font-weight: bold; } .value { font-size: 11px; } "
    ".axis { fill: #555; font-size: 11px; } .grid { stroke: #ddd; } .base { stroke: #888; }"
)


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


@dataclass(frozen=True)
class Group:
    label: tuple[str, ...]  # one line each, under the group
    values: dict[str, float] = field(default_factory=dict)  # series key -> value


@dataclass(frozen=True)
class Panel:
    title: str
    groups: Sequence[Group]
    digits: int = 0  # decimals of the bar labels


def ticks(top: float, count: int = 5) -> list[float]:
    """Axis values from 0 to at least ``top`` at a round step (1, 2, 2.5 or 5 x 10^k)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    return [k * step for k in range(math.ceil(top / step - 1e-9) + 1)]


def _number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def _decimals(step: float) -> int:
    """How many decimals the axis values of ``step`` need (0 for 50, 1 for 2.5 or 0.5)."""
    return next(d for d in range(6) if abs(round(step, d) - step) < 1e-9 * max(step, 1))


def _el(parent: ET.Element, tag: str, attrs: Mapping[str, str | float]) -> ET.Element:
    """A child element; numbers are written with one decimal."""
    return ET.SubElement(parent, tag, {
        name: f"{value:.1f}" if isinstance(value, float) else str(value)
        for name, value in attrs.items()
    })


def _text(
    parent: ET.Element, x: float, y: float, text: str, css: str = "", anchor: str = "start"
) -> ET.Element:
    attrs: dict[str, str | float] = {"x": float(x), "y": float(y)}
    if css:
        attrs["class"] = css
    if anchor != "start":
        attrs["text-anchor"] = anchor
    element = _el(parent, "text", attrs)
    element.text = text
    return element


def grouped_bars(
    title: str, subtitle: Sequence[str], series: Sequence[Series], panels: Sequence[Panel]
) -> str:
    """The chart as an SVG document (a string)."""
    known = {s.key for s in series}
    drawn = [
        Panel(p.title, [g for g in p.groups if known & g.values.keys()], p.digits) for p in panels
    ]
    drawn = [p for p in drawn if p.groups]
    used = {key for p in drawn for g in p.groups for key in g.values}
    legend = [s for s in series if s.key in used]
    top = 40 + 18 * len(subtitle) + (30 if legend else 0)
    panel_height = PANEL_TITLE + PLOT_HEIGHT + GROUP_LABELS
    height = top + panel_height * len(drawn) + (40 if not drawn else 10)
    svg = ET.Element("svg", {"xmlns": SVG_NS, "width": str(WIDTH), "height": str(height),
                             "viewBox": f"0 0 {WIDTH} {height}"})
    ET.SubElement(svg, "style").text = STYLE
    _el(svg, "rect", {"width": "100%", "height": "100%", "fill": "white"})
    _text(svg, 16, 26, title, "title")
    for k, line in enumerate(subtitle):
        _text(svg, 16, 46 + 18 * k, line, "subtitle")
    x = 16.0
    for s in legend:
        y = top - 22
        _el(svg, "rect", {"x": x, "y": y - 11, "width": 14, "height": 14, "fill": s.color,
                          "class": "legend", "data-series": s.key})
        _text(svg, x + 20, y, s.label)
        x += 40 + 6.2 * len(s.label)  # about the width of 12 px sans-serif text
    if not drawn:
        _text(svg, 16, top + 20, "No figures to chart in this run (see the tables).")
    for k, panel in enumerate(drawn):
        _panel(svg, panel, series, top + k * panel_height)
    ET.indent(svg)
    return ET.tostring(svg, encoding="unicode") + "\n"


def _panel(svg: ET.Element, panel: Panel, series: Sequence[Series], top: float) -> None:
    _text(svg, 16, top + 22, panel.title, "panel")
    plot_top = top + PANEL_TITLE
    base = plot_top + PLOT_HEIGHT
    right = WIDTH - RIGHT
    values = [v for g in panel.groups for v in g.values.values()]
    axis = ticks(max(values) * 1.08)  # headroom for the tallest bar's label
    decimals = _decimals(axis[1] - axis[0])
    scale = PLOT_HEIGHT / axis[-1]
    for tick in axis:
        y = base - tick * scale
        _el(svg, "line", {"x1": LEFT, "x2": right, "y1": y, "y2": y,
                          "class": "base" if tick == 0 else "grid"})
        _text(svg, LEFT - 6, y + 4, _number(tick, decimals), "axis", "end")
    width = (right - LEFT) / len(panel.groups)
    for k, group in enumerate(panel.groups):
        present = [s for s in series if s.key in group.values]
        bar = min(MAX_BAR, 0.7 * width / max(len(present), 1))
        x = LEFT + k * width + (width - (bar + GAP) * len(present) + GAP) / 2
        name = " ".join(group.label)
        for s in present:
            value = group.values[s.key]
            h = value * scale
            rect = _el(svg, "rect", {
                "x": x, "y": base - h, "width": bar, "height": h, "fill": s.color,
                "class": "bar", "data-series": s.key, "data-group": name,
            })
            ET.SubElement(rect, "title").text = f"{s.label}, {name}: {_number(value, 2)}"
            _text(svg, x + bar / 2, base - h - 4, _number(value, panel.digits), "value",
                  "middle")
            x += bar + GAP
        center = LEFT + (k + 0.5) * width
        for line_number, line in enumerate(group.label):
            _text(svg, center, base + 17 + 15 * line_number, line,
                  "axis" if line_number else "", "middle")

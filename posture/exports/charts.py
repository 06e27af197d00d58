"""The benchmark report's summary chart: one stacked bar per section, its clusters by section
status. Geometry only; templates/exports/status_bars.svg.html draws it (SVG presentation
attributes, no script), so the same chart prints in the HTML and the PDF."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from posture.models import Status

# Section statuses in the report's order, with their colours (the dashboard's status palette).
STATUS_COLOURS: dict[str, str] = {
    Status.FAIL: "#c53030",
    Status.UNKNOWN: "#b7791f",
    Status.EXCEPTED: "#6b46c1",
    Status.PASS: "#2f855a",
    Status.NOT_APPLICABLE: "#a0aec0",
}
WIDTH = 640
LABEL_WIDTH = 110
ROW_HEIGHT = 22
BAR_HEIGHT = 14
TOP = 4
LEGEND_HEIGHT = 24


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    x: float
    width: float
    colour: str


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    text_y: float
    total: int
    segments: list[Segment]


@dataclass(frozen=True)
class LegendItem:
    label: str
    colour: str
    x: float


@dataclass(frozen=True)
class StatusBars:
    width: int
    height: int
    label_width: int
    bar_height: int
    bars: list[Bar]
    legend: list[LegendItem]
    legend_y: float


def status_bars(rows: Sequence[tuple[str, dict[str, int]]], labels: dict[str, str]) -> StatusBars:
    """`rows`: (section label, status → clusters) in order; each bar spans the section's clusters."""
    span = WIDTH - LABEL_WIDTH - 50  # room for the total at the bar's end
    bars = []
    for index, (label, counts) in enumerate(rows):
        y = TOP + index * ROW_HEIGHT
        total = sum(counts.get(status, 0) for status in STATUS_COLOURS)
        segments, x = [], float(LABEL_WIDTH)
        for status, colour in STATUS_COLOURS.items():
            count = counts.get(status, 0)
            if count:
                width = span * count / total
                segments.append(Segment(status, count, round(x, 1), round(width, 1), colour))
                x += width
        bars.append(Bar(label, y, y + BAR_HEIGHT - 3, total, segments))
    legend_y = TOP + len(rows) * ROW_HEIGHT + 8
    step = WIDTH / len(STATUS_COLOURS)
    legend = [LegendItem(labels[status], colour, round(i * step, 1)) for i, (status, colour) in enumerate(STATUS_COLOURS.items())]
    return StatusBars(WIDTH, int(legend_y + LEGEND_HEIGHT), LABEL_WIDTH, BAR_HEIGHT, bars, legend, legend_y)

"""Server-side SVG charts: geometry computed here, drawn by templates (no chart library, no
inline script or style: SVG presentation attributes only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import template

register = template.Library()

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 12, 28


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Label:
    text: str
    x: float
    anchor: str = "middle"


def _x(index: int, count: int) -> float:
    span = WIDTH - LEFT - RIGHT
    return LEFT + (span * index / (count - 1) if count > 1 else span / 2)


def _y(value: float) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - max(0.0, min(100.0, value)) / 100)


def _anchor(index: int, count: int) -> str:
    # The end labels sit at the plot's edges: align them inwards so they are not clipped.
    if count > 1 and index == 0:
        return "start"
    return "end" if count > 1 and index == count - 1 else "middle"


def _polyline(values: list[float | None]) -> str:
    return " ".join(f"{_x(i, len(values)):.1f},{_y(v):.1f}" for i, v in enumerate(values) if v is not None)


@register.inclusion_tag("posture/partials/trend_chart.html")
def trend_chart(points: list[Any]) -> dict[str, Any]:
    """Score and coverage (0-100) over time from a list of TrendPoint."""
    count = len(points)
    step = max(1, count // 6)
    shown = [i for i in range(count) if i % step == 0 or i == count - 1]
    if len(shown) > 1 and shown[-1] - shown[-2] < step:
        shown.pop(-2)  # keep the last label clear of its neighbour
    labels = [Label(points[i].at.strftime("%b %d"), _x(i, count), _anchor(i, count)) for i in shown]
    last = points[-1] if points else None
    return {
        "points": points,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right_edge": WIDTH - RIGHT,
        "baseline": HEIGHT - BOTTOM,
        "label_y": HEIGHT - 8,
        "ticks": [Tick(v, _y(v)) for v in (0, 25, 50, 75, 100)],
        "labels": labels,
        "score_line": _polyline([p.score for p in points]),
        "coverage_line": _polyline([p.coverage for p in points]),
        "score_dots": [(_x(i, count), _y(p.score)) for i, p in enumerate(points) if p.score is not None][-1:],
        "last": last,
    }

"""deploy/grafana/arc-posture.json queries only metrics /metrics exports.

The metric names come out of each PromQL expression by a small tokenizer rather than a PromQL
parser: no maintained pure-Python PromQL parser is among the project's dependencies, and the
dashboard's expressions use only selectors, aggregations, functions and binary operators. What
is left once string literals, label matchers, grouping clauses and durations are removed is
identifiers; an identifier followed by "(" is a function or aggregation, a few more are
keywords, and every other one is a metric name. test_the_tokenizer_finds_every_metric_name
pins that down on an expression using each construct.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "arc-posture.json"
TOKEN = "g" * 40

STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
MATCHERS = re.compile(r"\{[^{}]*\}")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
DURATIONS = re.compile(r"\[[^\]]*\]|\boffset\s+-?[\w$]+|@\s*[\w.()]+")
VARIABLES = re.compile(r"\$\{?\w+\}?")
IDENTIFIER = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?")
KEYWORDS = {"and", "or", "unless", "bool", "group_left", "group_right", "inf", "nan"}
LABEL_VALUES = re.compile(r"^\s*label_values\((.*?)(?:,\s*\w+)?\)\s*$")


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = STRINGS.sub('""', expression)
    text = MATCHERS.sub("", text)
    text = GROUPING.sub("", text)
    text = DURATIONS.sub("", text)
    text = VARIABLES.sub("", text)
    return {m.group(1) for m in IDENTIFIER.finditer(text) if not m.group(2) and m.group(1).lower() not in KEYWORDS}


def expressions(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and template variable query."""

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield item
            yield from panels(item.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            found = LABEL_VALUES.match(query)
            assert found, f"variable {variable['name']}: only label_values(...) queries are understood here"
            yield f"variable {variable['name']!r}", found.group(1)


def test_the_tokenizer_finds_every_metric_name() -> None:
    expression = (
        'topk(15, sum by (control, severity) (rate(arc_posture_a{scope=~"$scope", x="b{c} d"}[$__rate_interval] offset 5m)) > 0)'
        " / on(scope) group_left(grade) arc_posture_b * 1e3 + time() - max without (queue) (arc_posture_c:ratio)"
        ' and bool arc_posture_d unless absent(up{job="x"}) or label_replace(arc_posture_e, "dst", "$1", "src", "(.*)")'
    )
    assert metric_names(expression) == {"arc_posture_a", "arc_posture_b", "arc_posture_c:ratio", "arc_posture_d", "up", "arc_posture_e"}
    assert metric_names("time() - max(arc_posture_f)") == {"arc_posture_f"}


def test_every_panel_queries_something() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    for panel in panels:
        assert panel.get("targets"), panel["title"]
        for target in panel["targets"]:
            assert metric_names(target["expr"]), f"{panel['title']}: {target['expr']}"


@pytest.mark.django_db
def test_every_metric_the_dashboard_uses_is_exported(make_fleet: Callable[..., Any], settings: Any, redis_url: str) -> None:
    # With a Redis broker, so the Celery queue families are exported too.
    settings.ARC_METRICS_TOKEN = TOKEN
    settings.ARC_METRICS_CACHE_SECONDS = 0
    settings.CELERY_BROKER_URL = redis_url
    settings.CELERY_TASK_ALWAYS_EAGER = False
    make_fleet(2)
    response = Client().get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    exported = set()
    for family in text_string_to_metric_families(response.content.decode()):
        exported.add(family.name)
        exported.update(sample.name for sample in family.samples)
    used = {(where, name) for where, expression in expressions(json.loads(DASHBOARD.read_text())) for name in metric_names(expression)}
    assert {name for _, name in used} >= {"arc_posture_fleet_score", "arc_posture_failing_clusters", "arc_posture_celery_queue_length"}
    unknown = sorted((where, name) for where, name in used if name not in exported)
    assert not unknown, f"the dashboard queries metrics /metrics does not export: {unknown}"

"""The filters of an export: those of the clusters and benchmark pages, validated once.

Clusters are selected by posture.read.clusters.cluster_list (the list page's own filtering);
controls by id, severity, framework and section from the catalog. `status` applies to each
finding (cluster × control).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from posture.catalog.controls import CONTROLS, Control
from posture.catalog.frameworks import FRAMEWORKS
from posture.evaluate.scoring import GRADE_FLOORS, NO_GRADE, SECTION_CONTROLS
from posture.exports.errors import ExportError
from posture.exports.history import check_as_of, clusters_as_of
from posture.models import Cluster, ControlResult, NetworkPath, Scope, Status
from posture.normalize import CONNECTIVITY_STATUSES
from posture.read.clusters import cluster_list

GRADES = (*(letter for letter, _ in GRADE_FLOORS), NO_GRADE)
SEVERITIES = ("high", "medium", "low")
STATUSES = tuple(Status.values)
# Filters that take several values (repeated, or comma-separated): they select rows, not clusters.
MULTIPLE = ("control", "status", "severity")
# Filters on what a cluster's description or score is today; as of a past time it may have been
# other (posture/exports/cluster_history.py), so those are refused with as_of. Subscription and
# resource group come from the ARM id (only their casing can change); scope is as now.
DESCRIPTION_FILTERS = ("q", "location", "tag", "grade", "distribution", "infrastructure", "connectivity", "network_path")


@dataclass(frozen=True)
class ExportFilters:
    q: str = ""  # name contains, as on the clusters page
    scope: str = ""
    subscription: str = ""
    resource_group: str = ""
    location: str = ""
    tag: str = ""
    grade: str = ""
    distribution: str = ""
    infrastructure: str = ""
    connectivity: str = ""
    network_path: str = ""
    control: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    severity: tuple[str, ...] = ()
    framework: str = ""
    section: str = ""
    removed: bool = False
    # The posture as it stood then, rebuilt from the stored history (posture/exports/history.py).
    as_of: dt.datetime | None = None

    @classmethod
    def parse(cls, mapping: Mapping[str, Any]) -> ExportFilters:
        """Filters from a query string (a QueryDict) or the command's options; blank values are
        ignored. Raises ExportError naming every unknown filter and value."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(mapping) - names)
        problems = [f"unknown filter {name!r}" for name in unknown]
        values: dict[str, Any] = {}
        for name in names & set(mapping):
            given = [str(v).strip() for v in _values(mapping, name) if v is not None and str(v).strip()]
            if name == "removed":
                values[name] = any(v.lower() in ("1", "true", "yes", "on") for v in given)
            elif name == "as_of" and len(given) == 1:
                values[name] = _time(given[0], problems)
            elif name in MULTIPLE:
                values[name] = tuple(dict.fromkeys(part.strip() for v in given for part in v.split(",") if part.strip()))
            elif len(given) > 1:
                problems.append(f"filter {name!r} takes one value, not {len(given)}")
            elif given:
                values[name] = given[0]
        filters = cls(**values)
        problems += filters._problems()
        if problems:
            raise ExportError("Bad export filters: " + "; ".join(problems) + ".")
        return filters

    def _problems(self) -> list[str]:
        problems = _unknown("control", self.control, [c.id for c in CONTROLS])
        problems += _unknown("status", self.status, STATUSES)
        problems += _unknown("severity", self.severity, SEVERITIES)
        problems += _unknown("grade", [self.grade] if self.grade else [], GRADES)
        problems += _unknown("connectivity", [self.connectivity] if self.connectivity else [], sorted(CONNECTIVITY_STATUSES))
        problems += _unknown("network path", [self.network_path] if self.network_path else [], NetworkPath.values)
        framework = FRAMEWORKS.get(self.framework)
        if self.framework and framework is None:
            problems.append(f"unknown framework {self.framework!r} (one of {', '.join(FRAMEWORKS)})")
        if self.section and not self.framework:
            problems.append(f"section {self.section!r} needs its framework")
        if self.section and framework is not None and self.section not in {s.id for s in framework.sections}:
            problems.append(f"unknown section {self.section!r} of framework {self.framework!r}")
        if self.scope and not Scope.objects.filter(name=self.scope).exists():
            problems.append(f"unknown scope {self.scope!r}")
        elif self.as_of is not None:
            described = [name for name in DESCRIPTION_FILTERS if getattr(self, name)]
            if described:
                problems.append(
                    f"with as_of, filters on a cluster's description ({', '.join(described)}) are refused: they would select by "
                    "today's values, not those then; leave them out and filter the export"
                )
            try:
                check_as_of(self.as_of, Scope.objects.filter(name=self.scope).values_list("pk", flat=True) if self.scope else None)
            except ExportError as exc:
                problems.append(str(exc).rstrip("."))
        return problems

    def as_dict(self) -> dict[str, Any]:
        """The filters that are set, JSON-ready (the audit row records them)."""
        shown = {name: list(v) if isinstance(v, tuple) else v for name, v in asdict(self).items() if v}
        if self.as_of is not None:
            shown["as_of"] = self.as_of.isoformat()
        return shown

    def controls(self) -> tuple[Control, ...]:
        """The selected controls, in catalog order."""
        chosen = CONTROLS
        if self.control:
            chosen = tuple(c for c in chosen if c.id in self.control)
        if self.severity:
            chosen = tuple(c for c in chosen if c.severity in self.severity)
        if self.framework:
            sections = SECTION_CONTROLS.items()
            cited = {c for (fid, sid), ids in sections if fid == self.framework and self.section in ("", sid) for c in ids}
            chosen = tuple(c for c in chosen if c.id in cited)
        return chosen

    def clusters(self) -> QuerySet[Cluster]:
        """The selected clusters, by name then pk. With a status filter, only clusters holding a
        finding that passes it (a selected control in one of those statuses)."""
        clusters = cluster_list(
            q=self.q,
            scope=self.scope,
            subscription=self.subscription,
            resource_group=self.resource_group,
            location=self.location,
            tag=self.tag,
            grade=self.grade,
            distribution=self.distribution,
            infrastructure=self.infrastructure,
            connectivity=self.connectivity,
            network_path=self.network_path,
            removed=self.removed or self.as_of is not None,
            sort="name",
        )
        if self.as_of is not None:  # those there then; the status filter applies to the rebuilt rows
            return clusters_as_of(clusters, self.as_of)
        if self.status:
            ids = [c.id for c in self.controls()]
            matching = ControlResult.objects.filter(cluster=OuterRef("pk"), control__in=ids, status__in=self.status)
            clusters = clusters.filter(Exists(matching))
        return clusters


def _time(text: str, problems: list[str]) -> dt.datetime | None:
    """An ISO 8601 time (2026-11-01T00:00Z), UTC when it names no offset."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        problems.append(f"as_of {text!r} is not an ISO 8601 time such as 2026-11-01T00:00Z")
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _values(mapping: Mapping[str, Any], name: str) -> list[Any]:
    if hasattr(mapping, "getlist"):  # a QueryDict: every value of a repeated parameter
        return list(mapping.getlist(name))
    value = mapping[name]
    return list(value) if isinstance(value, list | tuple) else [value]


def _unknown(name: str, given: Iterable[str], known: Iterable[str]) -> list[str]:
    known = list(known)
    return [f"unknown {name} {value!r} (one of {', '.join(known)})" for value in given if value not in known]

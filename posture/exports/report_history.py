"""Benchmark reports as of a past time, rebuilt from the stored history (posture/exports/history.py).

Totals come from each scope's fleet snapshot in force then (the latest written by then), as a
present-day report's come from the latest. The sections' cluster lists come from the verdicts in
force then: one pass over the clusters that existed then, a chunk at a time, resolving each
section's fail-dominant status once per distinct combination of its controls' statuses. The pass
is the as-of findings' (posture/exports/rows.py): clusters arrive in the order of their names
then, described as they stood then (name, subscription, resource group, location: from the
cluster history), so a cluster renamed since is listed, and placed, as the findings CSV of a
bundle taken then names it. Each list keeps its first `limit` and counts the rest: memory stays
constant at any fleet size (but for the ids of the selection, read once in that order), and one
pass serves several frameworks (the bundle's reports).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from posture.catalog.controls import CONTROLS
from posture.evaluate.scoring import SECTION_CONTROLS, section_status
from posture.exports.history import check_as_of, clusters_as_of, snapshots_as_of, statuses_as_of
from posture.exports.reports import (
    DEFAULT_LIMIT,
    LISTED_STATUSES,
    STATUS_LABELS,
    BenchmarkReport,
    ClusterList,
    Listing,
    assemble_report,
    framework_and_scopes,
)
from posture.exports.rows import Progress, past_chunks
from posture.models import Cluster
from posture.read.fleet import summarize

VECTORS_KEPT = 4096
ListKey = tuple[str, str, str]  # (framework, section, status)


@dataclass(frozen=True)
class PastLists:
    """The section cluster lists of some frameworks as of `at`, each its first `limit` clusters by
    their names then and its exact total."""

    at: dt.datetime
    limit: int
    lists: dict[ListKey, ClusterList]

    def listing(self, framework: str) -> Listing:
        def listed(section: str, status: str, total: int) -> ClusterList:
            # `total` is the snapshot's: the list counts the clusters itself. A section no
            # control cites has no list.
            found = self.lists.get((framework, section, status))
            return found if found is not None else ClusterList(status, STATUS_LABELS[status], 0, [])

        return listed


def benchmark_report_as_of(
    framework_id: str,
    scope_ids: Sequence[int] | None,
    at: dt.datetime,
    limit: int = DEFAULT_LIMIT,
    *,
    lists: PastLists | None = None,
    progress: Progress | None = None,
) -> BenchmarkReport:
    """The report of `framework_id` over the scopes (None: every scope) as it stood at `at`, or an
    ExportError when the history cannot say (check_as_of). `lists`: computed beforehand by
    past_section_lists for this framework, `at` and `limit` (one pass for several reports);
    `progress`: of the pass over the clusters otherwise."""
    framework, scopes = framework_and_scopes(framework_id, scope_ids, limit)
    ids = [scope.pk for scope in scopes]
    at = check_as_of(at, ids)
    if lists is None:
        lists = past_section_lists([framework.id], ids, at, limit, progress=progress)
    summary = summarize(snapshots_as_of(ids, at))
    return assemble_report(framework, scopes, scope_ids is None, at, summary, lists.listing(framework.id), limit, rebuilt=True)


def past_section_lists(
    framework_ids: Iterable[str], scope_ids: list[int], at: dt.datetime, limit: int, *, progress: Progress | None = None
) -> PastLists:
    """Every listed section status's clusters of the frameworks, over the scopes, as of `at`: the
    clusters as they were described then, in the order of their names then."""
    sections = [key for key in SECTION_CONTROLS if key[0] in set(framework_ids)]
    cited = {control for key in sections for control in SECTION_CONTROLS[key]}
    controls = [c.id for c in CONTROLS if c.id in cited]
    pickers = {key: tuple(controls.index(c) for c in SECTION_CONTROLS[key]) for key in sections}
    collector = _Collector(pickers, limit)
    clusters = clusters_as_of(Cluster.objects.filter(scope_id__in=scope_ids), at)
    for chunk in past_chunks(clusters, at, progress):  # the as-of findings' pass: order and descriptions then
        statuses = statuses_as_of([c.pk for c in chunk], at, controls)
        for cluster in chunk:
            collector.add(cluster, tuple(statuses.get((cluster.pk, c), "") for c in controls))
    lists, totals = {}, collector.totals
    for framework, section in sections:
        for status in LISTED_STATUSES:
            key = (framework, section, status)
            lists[key] = ClusterList(status, STATUS_LABELS[status], totals[key], collector.names[key])
    return PastLists(at, limit, lists)


class _Collector:
    """The first `limit` clusters of each (framework, section, status), and how many in all.

    A cluster's lists are resolved from its vector of control statuses: each section's status
    once per distinct combination of that section's statuses (few), and the whole list of keys
    once per distinct vector, up to VECTORS_KEPT of them (a fleet has few; a pathological one
    costs time, not memory)."""

    def __init__(self, pickers: dict[tuple[str, str], tuple[int, ...]], limit: int) -> None:
        self.pickers = [(key, itemgetter(*pick) if len(pick) > 1 else _single(pick[0])) for key, pick in pickers.items()]
        self.limit = limit
        self.names: dict[ListKey, list[Any]] = {(*key, status): [] for key in pickers for status in LISTED_STATUSES}
        self.totals: Counter[ListKey] = Counter()
        self.by_vector: dict[tuple[str, ...], list[ListKey]] = {}
        self.by_section: dict[tuple[tuple[str, str], tuple[str, ...]], str] = {}

    def add(self, cluster: Any, vector: tuple[str, ...]) -> None:
        keys = self.by_vector.get(vector)
        if keys is None:
            keys = self._listed(vector)
            if len(self.by_vector) < VECTORS_KEPT:
                self.by_vector[vector] = keys
        totals, names, limit = self.totals, self.names, self.limit
        for key in keys:
            totals[key] += 1
            listed = names[key]
            if len(listed) < limit:
                listed.append(cluster)

    def _listed(self, vector: tuple[str, ...]) -> list[ListKey]:
        """The (framework, section, status) lists a cluster with these control statuses is in."""
        keys = []
        for key, pick in self.pickers:
            statuses = pick(vector)
            status = self.by_section.get((key, statuses))
            if status is None:
                status = self.by_section[(key, statuses)] = section_status(s for s in statuses if s)
            if status in LISTED_STATUSES:
                keys.append((*key, status))
        return keys


def _single(index: int) -> Callable[[tuple[str, ...]], tuple[str, ...]]:
    """Like itemgetter of several indexes (a tuple), for one."""
    return lambda vector: (vector[index],)

"""Scores, grades and coverage; the formula is explained in docs/scoring.md.

score    = 100 × Σ weight(pass, attested) / Σ weight(applicable controls that are not excepted)
coverage = share of applicable controls with an evidenced verdict (pass or fail from Azure data,
           or attested)
Unknown counts against the score (it is never a pass); not-applicable and excepted controls
leave the denominator.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from posture.catalog.controls import CONTROLS_BY_ID
from posture.catalog.frameworks import FRAMEWORKS
from posture.models.results import Status

GRADE_FLOORS = (("A", 90.0), ("B", 80.0), ("C", 70.0), ("D", 60.0), ("E", 50.0), ("F", 0.0))
NO_GRADE = "-"
PASSING = (Status.PASS, Status.ATTESTED)


@dataclass(frozen=True)
class ClusterScore:
    score: float | None
    grade: str
    coverage: float | None
    failing: int


def grade_for(score: float | None) -> str:
    if score is None:
        return NO_GRADE
    return next(letter for letter, floor in GRADE_FLOORS if score >= floor)


def score_cluster(results: Iterable[tuple[str, str, str]]) -> ClusterScore:
    """`results`: (control id, status, raw status) for each control."""
    earned = possible = 0
    applicable = evidenced = failing = 0
    for control, status, raw in results:
        if status == Status.NOT_APPLICABLE:
            continue
        applicable += 1
        if raw in (Status.PASS, Status.FAIL) or status == Status.ATTESTED:
            evidenced += 1
        if status == Status.FAIL:
            failing += 1
        if status == Status.EXCEPTED:
            continue
        weight = CONTROLS_BY_ID[control].weight
        possible += weight
        if status in PASSING:
            earned += weight
    score = round(100.0 * earned / possible, 1) if possible else None
    coverage = round(100.0 * evidenced / applicable, 1) if applicable else None
    return ClusterScore(score, grade_for(score), coverage, failing)


def section_status(statuses: Iterable[str]) -> str:
    """Fail-dominant: a section fails for a cluster if any of its controls fails."""
    seen = set(statuses)
    for status in (Status.FAIL, Status.UNKNOWN, Status.EXCEPTED):
        if status in seen:
            return status
    return Status.PASS if seen & set(PASSING) else Status.NOT_APPLICABLE


def sections_by_control() -> dict[tuple[str, str], list[str]]:
    """(framework, section) → control ids that cite it."""
    mapping: dict[tuple[str, str], list[str]] = {}
    for control in CONTROLS_BY_ID.values():
        for ref in control.references:
            mapping.setdefault((ref.framework, ref.section), []).append(control.id)
    return mapping


SECTION_CONTROLS = sections_by_control()


def empty_section_tally() -> dict[str, dict[str, Counter[str]]]:
    return {fid: {s.id: Counter() for s in f.sections} for fid, f in FRAMEWORKS.items()}

"""Fleet aggregates from each cluster's vector of control statuses (one letter per control, in
catalog order, as stored in `Cluster.statuses`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from posture.catalog.controls import CONTROLS
from posture.evaluate.scoring import SECTION_CONTROLS, ClusterScore, section_status

CONTROL_IDS = tuple(c.id for c in CONTROLS)
STATUS_CODES = {"pass": "P", "fail": "F", "unknown": "U", "not_applicable": "N", "attested": "A", "excepted": "E"}
STATUS_OF_CODE = {code: status for status, code in STATUS_CODES.items()}
# Each benchmark section's controls picked out of a status vector (a letter, or a tuple of them).
SECTION_PICKERS = {key: itemgetter(*(CONTROL_IDS.index(c) for c in controls)) for key, controls in SECTION_CONTROLS.items()}


@dataclass
class Tally:
    """Fleet aggregates. Clusters are counted by their vector of control statuses (one letter per
    control, as stored): a fleet has far fewer distinct vectors than clusters, and each section
    has fewer still, so statuses are resolved once per distinct vector or section sub-vector."""

    clusters: int = 0
    scored: int = 0
    score_sum: float = 0.0
    covered: int = 0
    coverage_sum: float = 0.0
    grades: Counter[str] = field(default_factory=Counter)
    vectors: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    connectivity: Counter[str] = field(default_factory=Counter)

    def add(self, row: dict[str, Any], codes: str, score: ClusterScore) -> None:
        self.clusters += 1
        if score.score is not None:
            self.scored += 1
            self.score_sum += score.score
        if score.coverage is not None:
            self.covered += 1
            self.coverage_sum += score.coverage
        self.grades[score.grade] += 1
        self.vectors[codes] += 1
        self.paths[row["network_path"] or "unknown"] += 1
        self.connectivity[row["connectivity_status"] or "Unknown"] += 1

    def controls(self) -> dict[str, dict[str, int]]:
        result: dict[str, Counter[str]] = {c: Counter() for c in CONTROL_IDS}
        for codes, count in self.vectors.items():
            for control, code in zip(CONTROL_IDS, codes, strict=True):
                result[control][STATUS_OF_CODE[code]] += count
        return {c: dict(v) for c, v in result.items()}

    def sections(self) -> dict[str, dict[str, dict[str, int]]]:
        result: dict[str, dict[str, dict[str, int]]] = {}
        for (framework, section), pick in SECTION_PICKERS.items():
            # How many clusters show each combination of this section's control statuses.
            combinations: Counter[Any] = Counter()
            for codes, count in self.vectors.items():
                combinations[pick(codes)] += count
            counts: Counter[str] = Counter()
            for combination, count in combinations.items():
                counts[section_status(STATUS_OF_CODE[code] for code in combination)] += count
            result.setdefault(framework, {})[section] = dict(counts)
        return result


def stored_score(row: dict[str, Any]) -> ClusterScore:
    """The score a cluster row carries from its last evaluation."""
    return ClusterScore(row["score"], row["grade"], row["coverage"], 0)

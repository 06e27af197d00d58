from __future__ import annotations

import pytest

from posture.docs.catalog import EXAMPLE
from posture.evaluate.scoring import grade_for, score_cluster, section_status


def test_the_documented_worked_example() -> None:
    result = score_cluster(EXAMPLE)
    assert (result.score, result.grade, result.coverage, result.failing) == (56.5, "E", 72.7, 2)


@pytest.mark.parametrize(
    "score,grade", [(100, "A"), (90, "A"), (89.9, "B"), (80, "B"), (70, "C"), (60, "D"), (50, "E"), (49.9, "F"), (0, "F"), (None, "-")]
)
def test_grade_boundaries(score, grade) -> None:
    assert grade_for(score) == grade


def test_unknown_never_counts_as_a_pass() -> None:
    all_pass = score_cluster([("ARC-NP-03", "pass", "pass"), ("ARC-ID-01", "pass", "pass")])
    with_unknown = score_cluster([("ARC-NP-03", "pass", "pass"), ("ARC-ID-01", "unknown", "unknown")])
    assert all_pass.score == 100.0
    assert with_unknown.score == 50.0 and with_unknown.coverage == 50.0


def test_excepted_and_not_applicable_leave_the_denominator() -> None:
    result = score_cluster(
        [("ARC-NP-03", "pass", "pass"), ("ARC-ID-01", "excepted", "fail"), ("ARC-KV-01", "not_applicable", "not_applicable")]
    )
    assert result.score == 100.0
    assert result.coverage == 100.0  # the excepted fail was evidenced


def test_severity_weights_the_score() -> None:
    high_fails = score_cluster([("ARC-NP-01", "fail", "fail"), ("ARC-ID-01", "pass", "pass")])  # 3 vs 2
    assert high_fails.score == 40.0


def test_nothing_applicable_means_no_score() -> None:
    result = score_cluster([("ARC-KV-01", "not_applicable", "not_applicable")])
    assert (result.score, result.grade, result.coverage) == (None, "-", None)


@pytest.mark.parametrize(
    "statuses,expected",
    [
        (["pass", "fail", "unknown"], "fail"),
        (["pass", "unknown"], "unknown"),
        (["pass", "excepted"], "excepted"),
        (["pass", "attested"], "pass"),
        (["not_applicable"], "not_applicable"),
        (["attested", "not_applicable"], "pass"),
    ],
)
def test_sections_are_fail_dominant(statuses, expected) -> None:
    assert section_status(statuses) == expected


def test_fleet_sections_count_each_cluster_once_by_its_controls_in_that_section() -> None:
    from posture.evaluate.tally import CONTROL_IDS, STATUS_CODES, Tally

    def vector(**overrides: str) -> str:
        return "".join(STATUS_CODES[overrides.get(c.replace("-", "_"), "pass")] for c in CONTROL_IDS)

    tally = Tally()
    tally.vectors.update({vector(ARC_NP_02="fail"): 3, vector(): 2, vector(ARC_NP_01="unknown"): 1})
    sections = tally.sections()
    assert sections["cis-k8s"]["5.3.2"] == {"fail": 3, "pass": 3}
    assert sections["cis-k8s"]["5.3.1"] == {"pass": 5, "unknown": 1}
    assert sections["msft-printed"]["R1-CIS"] == {"fail": 3, "pass": 2, "unknown": 1}  # NP-01..02 both print it

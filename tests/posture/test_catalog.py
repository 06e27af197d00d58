"""The catalog is consistent data, and the docs generated from it are current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from posture.catalog.controls import CHANGES, CONTROLS, READS, SEVERITY_WEIGHTS
from posture.catalog.frameworks import ARTICLE, FRAMEWORKS, PRINTED, Ref
from posture.catalog.policies import POLICIES, POLICY_DEFINITION_IDS
from posture.docs.catalog import render_controls, render_scoring
from posture.evaluate.checks import CHECKS

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_every_control_has_a_check_and_every_check_a_control() -> None:
    assert set(CHECKS) == {c.id for c in CONTROLS}
    assert len({c.id for c in CONTROLS}) == len(CONTROLS) >= 15


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.id)
def test_every_control_is_complete_and_cites_existing_sections(control) -> None:
    assert control.severity in SEVERITY_WEIGHTS
    assert control.recommendation in {s.id for s in FRAMEWORKS["msft-arc-network"].sections}
    assert set(control.semantics) == {"pass", "fail", "unknown", "not_applicable"}
    assert control.rationale and control.remediation.summary
    benchmark_refs = [r for r in (*control.printed, *control.closer)]
    assert control.references, control.id
    for ref in control.references:
        assert ref.label()  # resolves to an existing framework section
    for guid in control.remediation.policies:
        assert guid in POLICIES
    if control.source != "attestation" and control.id != "ARC-EV-01":
        assert benchmark_refs, f"{control.id} cites no benchmark section"


def test_every_section_the_article_prints_exists_in_the_catalog() -> None:
    printed = FRAMEWORKS["msft-printed"]
    assert printed.kind == PRINTED
    expected = {"R1-CIS", "R1-NIST", "R1-NSA", "R1-OWASP", "R2-NIST", "R2-NSA"}
    assert {s.id for s in printed.sections} == expected
    for section in printed.sections:
        assert section.cites, section.id
        for framework, number in section.cites:
            assert FRAMEWORKS[framework].section(number).title


def test_printed_references_are_kept_exactly_as_microsoft_prints_them() -> None:
    titles = {s.id: s.title for s in FRAMEWORKS["msft-printed"].sections}
    assert titles["R1-CIS"] == "CIS Kubernetes Benchmark - Sections 1, 2, and 4"
    assert titles["R1-NIST"] == "NIST Application Container Security Guide - Section 4.5.1-3"
    assert titles["R1-NSA"] == "NSA Kubernetes Hardening Guidance \u2013 \u201cNetwork policies\u201d"
    assert titles["R2-NIST"] == "NIST Application Container Security Guide - Section 4.3.3, 4.3.4, and 4.4.2"


def test_cis_citations_carry_the_benchmark_version() -> None:
    ref = Ref("cis-k8s", "5.3.2")
    assert ref.version == "1.10"
    assert ref.label() == "CIS Kubernetes Benchmark 1.10 \u00a7 5.3.2 Ensure that all Namespaces have Network Policies defined"


def repeated_phrases(text: str) -> set[str]:
    """Runs of two words that occur more than once (case-insensitive)."""
    words = re.findall(r"[\w/.-]+", text.lower())
    pairs = [" ".join(pair) for pair in zip(words, words[1:], strict=False)]
    return {pair for pair in pairs if pairs.count(pair) > 1}


@pytest.mark.parametrize("framework", [f for f in FRAMEWORKS.values() if f.kind != PRINTED and f.id != ARTICLE.id], ids=lambda f: f.id)
def test_a_citation_names_its_framework_and_version_without_doubling_words(framework) -> None:
    # e.g. "OWASP Kubernetes Security Cheat Sheet Cheat Sheet Series (2025)" when the version repeated the title.
    for section in framework.sections:
        cited_as = Ref(framework.id, section.id).label().partition(" \u00a7 ")[0]
        assert cited_as == f"{framework.title} {framework.version}"
        assert not repeated_phrases(cited_as), cited_as


def test_the_owasp_cheat_sheet_is_cited_once_by_name_and_by_year() -> None:
    assert (
        Ref("owasp-k8s", "securing-data").label()
        == "OWASP Kubernetes Security Cheat Sheet 2025 \u00a7 Section 4: Deploy Phase \u203a Securing data"
    )


# The az and kubectl verbs the catalog's commands use; a new verb must be added to one of them.
VERBS = {"show": READS, "list": READS, "get": READS, "create": CHANGES, "update": CHANGES, "connect": CHANGES}


@pytest.mark.parametrize("control", [c for c in CONTROLS if c.remediation.commands], ids=lambda c: c.id)
def test_every_remediation_command_is_marked_as_reading_or_changing_as_its_verb_says(control) -> None:
    for command in control.remediation.commands:
        verb = next((word for word in command.template.split()[1:] if word in VERBS), None)
        assert verb is not None, f"classify the verb of {command.template!r}"
        assert command.effect == VERBS[verb], command.template


def test_policy_ids_are_guids_and_the_queried_ones_are_known() -> None:
    assert all(GUID.match(g) for g in POLICIES)
    assert set(POLICY_DEFINITION_IDS) <= set(POLICIES)


@pytest.mark.parametrize("name,render", [("controls.md", render_controls), ("scoring.md", render_scoring)])
def test_generated_docs_are_up_to_date(name, render) -> None:
    assert (DOCS / name).read_text(encoding="utf-8") == render(), f"run `python manage.py catalog_docs` to refresh docs/{name}"

"""A verdict's evidence on the cluster page: every value escaped, long values clipped."""

from __future__ import annotations

from web.templatetags.posture_ui import EVIDENCE_LINE_CHARS, EVIDENCE_LINES_SHOWN, evidence_list


def test_hostile_keys_and_values_are_escaped() -> None:
    html = evidence_list({"<b>key</b>": "<script>alert(1)</script>", "ids": ["a&b", {"x": "<i>"}]})
    assert "<script>" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;key&lt;/b&gt;" in html
    assert '<span class="ev-line">a&amp;b</span>' in html and "x: &lt;i&gt;" in html


def test_long_values_are_clipped_and_long_lists_cut() -> None:
    html = evidence_list({"big": "z" * 1000, "many": [f"item-{n}" for n in range(50)]})
    assert "z" * (EVIDENCE_LINE_CHARS - 1) + "…" in html and "z" * EVIDENCE_LINE_CHARS not in html
    assert html.count("item-") == EVIDENCE_LINES_SHOWN


def test_no_evidence_shows_a_dash() -> None:
    assert evidence_list({}) == '<span class="muted">–</span>'
    assert evidence_list(None) == '<span class="muted">–</span>'

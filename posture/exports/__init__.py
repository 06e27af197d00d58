"""Compliance evidence exports: what evaluation stored, as files an auditor can verify.

Findings and scorecards (CSV, JSON Lines, Excel), benchmark reports (HTML, PDF), the signed
evidence bundle and OSCAL. One batched row reader per kind and one writer per format, behind a
single registry; web views and the `export` command are thin over it.
"""

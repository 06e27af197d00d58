"""Scan progress as the UI and the `scan --wait` command read it: finished batches' totals on
the scan row plus the live counters of batches still running."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Sum

from posture.models import Scan, ScanBatch
from posture.models.scans import COUNTERS


@dataclass(frozen=True)
class ScanProgress:
    state: str
    batches_total: int
    batches_finished: int
    requests: int
    pages: int
    rows: int
    clusters: int
    throttled: int
    quota_wait_seconds: float

    @property
    def fraction(self) -> float:
        if self.state in Scan.FINISHED_STATES:
            return 1.0
        return self.batches_finished / self.batches_total if self.batches_total else 0.0


def scan_progress(scan_id: object) -> ScanProgress:
    scan = Scan.objects.get(pk=scan_id)
    # A stored batch's counters are on the scan already (a batch counts its clusters once stored).
    live = ScanBatch.objects.filter(scan_id=scan_id, state=ScanBatch.State.RUNNING).aggregate(**{name: Sum(name) for name in COUNTERS})
    return ScanProgress(
        state=scan.state,
        batches_total=scan.batches_total,
        batches_finished=scan.batches_done + scan.batches_failed,
        **{name: getattr(scan, name) + (live[name] or 0) for name in COUNTERS},
    )


# --- errors as each role reads them ------------------------------------------------------------
# Stored errors are technical (admins act on them): they may name client ids, credential variables,
# endpoints and subscriptions. Other roles read what happened, phrased for them, and who can help.
_BATCHES_FAILED = re.compile(r"^(\d+) of (\d+) batches failed")
_ROLE_MESSAGES = (
    (("which is not defined", "not listed in ARC_CREDENTIALS"), "The scope names a cloud or credential this deployment does not offer."),
    (("CA certificate bundle", "CERTIFICATE_VERIFY_FAILED", "SSLError"), "The connection to Azure could not be verified (TLS)."),
    (("did not issue a token", "rejected the token"), "Azure did not accept the scanning identity's sign-in."),
    (("lacks Reader", "may not ", "AuthorizationFailed"), "The scanning identity may not read some of the scope's subscriptions."),
    (("can read no subscription",), "The scanning identity can read no subscription in this scope."),
    (("throttl",), "Azure throttled the scan for too long."),
    (("could not reach Azure", "time limit", "timed out"), "Azure could not be reached in time."),
)
ADMIN_HINT = "An administrator can see the technical details."


def error_for_role(text: str) -> str:
    """A stored scan or batch error as a viewer or analyst reads it: no paths, ids or URLs."""
    if not text:
        return ""
    counted = _BATCHES_FAILED.match(text)
    prefix = f"{counted.group(1)} of {counted.group(2)} batches failed. " if counted else ""
    what = next((message for needles, message in _ROLE_MESSAGES if any(n in text for n in needles)), "The scan did not complete.")
    return f"{prefix}{what} {ADMIN_HINT}"

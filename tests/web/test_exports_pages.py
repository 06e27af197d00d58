"""The export pages: start an export from a page's menu, follow it, download it, audit them all.

Small findings exports stream back at once; a larger one (the limit lowered here) is built by
posture.exports.jobs' task, which runs in-process when the request's transaction commits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import re
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from posture.exports.filters import ExportFilters
from posture.exports.run import export_to_file
from posture.models import Export
from posture.roles import ANALYST
from tests.conftest import logged_in, make_user

pytestmark = pytest.mark.django_db

START = reverse("export-list")


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content)


def start(client: Client, kind: str, fmt: str, query: str = "", next_page: str = "") -> Any:
    data = {"kind": kind, "format": fmt, **({"next": next_page} if next_page else {})}
    return client.post(f"{START}?{query}" if query else START, data)


@pytest.fixture
def large_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every findings and scorecards export counts as large: built by the task, not streamed."""
    from posture.exports import jobs  # the task's module (posture.exports.jobs)

    monkeypatch.setattr(jobs, "SMALL_EXPORT_ROWS", 0)


def built_export(client: Client, capture: Any, kind: str = "findings", fmt: str = "csv", query: str = "") -> Export:
    with capture(execute=True):
        response = start(client, kind, fmt, query)
    assert response.status_code == 302 and response["Location"] == START
    export = Export.objects.get()
    assert export.state == Export.State.SUCCEEDED, export.error
    return export


def test_a_small_findings_export_streams_the_rows_export_to_file_writes(fleet: Any, analyst: Any) -> None:
    query = f"scope={fleet.scope.name}&severity=high"
    response = start(logged_in(analyst), "findings", "csv", query)
    assert response.status_code == 200
    got = body(response)
    today = timezone.now().date().isoformat()
    assert response["Content-Disposition"] == f'attachment; filename="arc-posture-findings-{today}.csv"'
    assert response["Content-Type"].startswith("text/csv")
    assert response["X-Content-SHA256"] == hashlib.sha256(got).hexdigest()
    audited = Export.objects.get()
    assert (audited.requested_by, audited.kind, audited.format, audited.state) == (analyst, "findings", "csv", Export.State.SUCCEEDED)
    assert audited.filters == {"scope": fleet.scope.name, "severity": ["high"]} and audited.sha256 == response["X-Content-SHA256"]

    expected = io.BytesIO()
    export_to_file("findings", "csv", ExportFilters.parse({"scope": fleet.scope.name, "severity": "high"}), expected)
    assert got == expected.getvalue()
    assert got.count(b"\n") > len(fleet.clusters)  # one row per cluster × high control, and the header


def test_a_viewer_cannot_start_an_export(fleet: Any, viewer: Any) -> None:
    assert start(logged_in(viewer), "findings", "csv").status_code == 403
    assert not Export.objects.exists()


@pytest.mark.parametrize(
    ("kind", "fmt", "query", "message"),
    [
        ("findings", "csv", "grade=Z", "unknown grade &#x27;Z&#x27;"),
        ("findings", "csv", "colour=red", "unknown filter &#x27;colour&#x27;"),
        ("findings", "csv", "framework=cis-k8s&section=99.9", "unknown section &#x27;99.9&#x27;"),
        ("findings", "docx", "", "No &#x27;docx&#x27; format for findings"),
        ("cats", "csv", "", "Unknown export &#x27;cats&#x27;"),
    ],
)
def test_bad_filters_give_a_message_on_their_page_and_create_nothing(
    fleet: Any, analyst: Any, kind: str, fmt: str, query: str, message: str
) -> None:
    client = logged_in(analyst)
    page = f"{reverse('cluster-list')}?{query}"
    response = start(client, kind, fmt, query, next_page=page)
    assert response.status_code == 302 and response["Location"] == page
    assert message in client.get(page).content.decode()
    assert not Export.objects.exists()


def test_the_message_of_a_foreign_next_page_comes_back_on_the_exports_page(fleet: Any, analyst: Any) -> None:
    response = start(logged_in(analyst), "findings", "csv", "grade=Z", next_page="https://evil.example/")
    assert response["Location"] == START


def test_a_large_export_is_built_by_the_task_and_downloaded_from_the_exports_page(
    fleet: Any, analyst: Any, large_exports: None, django_capture_on_commit_callbacks: Any
) -> None:
    client = logged_in(analyst)
    export = built_export(client, django_capture_on_commit_callbacks, query=f"scope={fleet.scope.name}")
    assert export.requested_by == analyst and export.filters == {"scope": fleet.scope.name}
    page = client.get(START).content.decode()
    download = reverse("export-download", args=[export.pk])
    assert f'href="{download}"' in page and "Succeeded" in page
    response = client.get(download)
    got = body(response)
    assert response.status_code == 200 and response["X-Content-SHA256"] == export.sha256 == hashlib.sha256(got).hexdigest()
    assert response["Content-Disposition"] == f'attachment; filename="arc-posture-findings-{export.created_at:%Y-%m-%d}.csv"'
    expected = io.BytesIO()
    export_to_file("findings", "csv", ExportFilters.parse({"scope": fleet.scope.name}), expected)
    assert got == expected.getvalue()


def test_a_download_and_its_progress_are_refused_to_another_analyst_but_not_to_an_admin(
    fleet: Any, analyst: Any, admin_user: Any, large_exports: None, django_capture_on_commit_callbacks: Any
) -> None:
    export = built_export(logged_in(analyst), django_capture_on_commit_callbacks, kind="scorecards")
    other = logged_in(make_user("olga-other", ANALYST))
    for name in ("export-download", "export-progress"):
        assert other.get(reverse(name, args=[export.pk])).status_code == 404, name
        assert logged_in(admin_user).get(reverse(name, args=[export.pk])).status_code == 200, name
    # Not listed on the other analyst's page either.
    assert str(export.pk) not in other.get(START).content.decode()


def test_the_progress_of_a_running_export_is_shown_and_polled(analyst: Any) -> None:
    export = Export.objects.create(kind="findings", format="xlsx", requested_by=analyst, state=Export.State.RUNNING)
    Export.objects.filter(pk=export.pk).update(progress_done=2500, progress_total=10000)
    client = logged_in(analyst)
    page = client.get(START).content.decode()
    progress_url = reverse("export-progress", args=[export.pk])
    assert f'data-progress-url="{progress_url}" data-active="1"' in page and 'value="0.2500"' in page
    assert "js/scan-progress.js" in page
    data = client.get(progress_url).json()
    assert data["state"] == "running" and not data["finished"] and data["percent"] == 25 and data["fraction"] == 0.25
    assert data["announce"] == "Export running, 25% done (2,500 of 10,000 rows)"


def test_a_failed_export_shows_its_error_and_no_download(analyst: Any) -> None:
    Export.objects.create(kind="bundle", format="zip", requested_by=analyst, state=Export.State.FAILED, error="OSError: disk full")
    page = logged_in(analyst).get(START).content.decode()
    assert "OSError: disk full" in page and "Download" not in page and "js/scan-progress.js" not in page


def test_a_malformed_export_id_gets_a_json_404(analyst: Any) -> None:
    response = logged_in(analyst).get(reverse("export-progress", args=["not-a-uuid"]))
    assert response.status_code == 404 and response.json() == {"error": "No such export"}


def test_the_audit_page_lists_every_export_for_admins_only(fleet: Any, analyst: Any, admin_user: Any) -> None:
    for user, kind in ((analyst, "findings"), (admin_user, "scorecards")):
        export_to_file(kind, "jsonl", ExportFilters.parse({"grade": "A"}), io.BytesIO(), user=user)
    export_to_file("scorecards", "csv", ExportFilters(), io.BytesIO(), actor="cron-user")  # from the command line
    assert logged_in(analyst).get(reverse("export-audit")).status_code == 403
    page = logged_in(admin_user).get(reverse("export-audit")).content.decode()
    for export in Export.objects.all():
        assert export.sha256 in page
    assert all(name in page for name in ("anna-analyst", "adam-admin", "cron-user")) and "grade=A" in page


def menu_actions(page: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]*)">', page)


def test_the_export_menu_carries_the_page_filters_to_the_start_view(fleet: Any, analyst: Any, viewer: Any) -> None:
    client = logged_in(analyst)
    clusters = client.get(
        reverse("cluster-list"), {"grade": "A", "control": "ARC-PL-01", "sort": "-score", "page": "1", "tag": ""}
    ).content.decode()
    actions = {a.replace("&amp;", "&") for a in menu_actions(clusters) if a.startswith(START)}
    # The list's control filter keeps the clusters failing it; order, paging and blanks are not filters.
    assert actions == {f"{START}?grade=A&control=ARC-PL-01&status=fail"}
    control = client.get(reverse("control-detail", args=["ARC-PL-01"]), {"status": "unknown"}).content.decode()
    assert f"{START}?control=ARC-PL-01&amp;status=unknown" in menu_actions(control)
    benchmark = client.get(reverse("benchmark-detail", args=["cis-k8s"]), {"scope": fleet.scope.name}).content.decode()
    assert f"{START}?scope={fleet.scope.name}&amp;framework=cis-k8s" in menu_actions(benchmark)
    assert 'name="kind" value="report"' in benchmark and 'name="kind" value="bundle"' in benchmark
    section = client.get(reverse("benchmark-section", args=["cis-k8s", "5.3.1"])).content.decode()
    assert f"{START}?framework=cis-k8s&amp;section=5.3.1&amp;status=fail" in menu_actions(section)
    assert 'name="kind" value="report"' not in client.get(reverse("control-detail", args=["ARC-PL-01"])).content.decode()
    assert 'class="export-menu"' not in logged_in(viewer).get(reverse("cluster-list")).content.decode()


def test_the_menu_s_filters_export_what_the_clusters_page_shows(fleet: Any, analyst: Any) -> None:
    client = logged_in(analyst)
    page = client.get(reverse("cluster-list"), {"grade": "A", "sort": "name"}).content.decode()
    action = next(a for a in menu_actions(page) if a.startswith(START)).replace("&amp;", "&")
    response = client.post(action, {"kind": "scorecards", "format": "csv"})
    listed = client.get(reverse("cluster-list"), {"grade": "A", "per_page": 100}).context["page"]
    assert body(response).count(b"\n") == 1 + len(listed)


def test_the_menus_as_of_form_exports_findings_as_they_stood_then(fleet: Any, analyst: Any) -> None:
    time.sleep(1.1)  # the form names whole seconds: one after the fleet's first evaluation
    then = timezone.now().astimezone(dt.UTC).replace(microsecond=0, tzinfo=None)
    response = logged_in(analyst).post(START, {"kind": "findings", "format": "csv", "as_of": then.isoformat()})
    assert response.status_code == 200, [str(m) for m in response.wsgi_request._messages]
    audited = Export.objects.get()
    assert audited.as_of == then.replace(tzinfo=dt.UTC) and audited.filters == {"as_of": then.replace(tzinfo=dt.UTC).isoformat()}
    expected = io.BytesIO()
    export_to_file("findings", "csv", ExportFilters.parse({"as_of": then.isoformat()}), expected)
    assert body(response) == expected.getvalue()


def test_an_as_of_before_the_history_begins_is_refused_on_the_page_and_creates_nothing(fleet: Any, analyst: Any) -> None:
    client = logged_in(analyst)
    response = client.post(START, {"kind": "findings", "format": "csv", "as_of": "2020-01-01T00:00", "next": "/clusters/"}, follow=True)
    assert "is before the history begins" in response.content.decode() and not Export.objects.exists()
    page = client.get(reverse("cluster-list")).content.decode()
    assert 'name="as_of"' in page and 'value="oscal"' in page


def as_of_choices(page: str) -> list[str]:
    """The values of the Export menu's as-of choices, as the form posts them."""
    select = page.split('name="as_of_export">', 1)[1].split("</select>", 1)[0]
    return [html.unescape(value) for value in re.findall(r'<option value="([^"]*)">', select)]


def test_a_benchmark_pages_as_of_form_offers_every_export_and_builds_a_report_as_of_then(
    fleet: Any, analyst: Any, django_capture_on_commit_callbacks: Any
) -> None:
    client = logged_in(analyst)
    page = client.get(reverse("benchmark-detail", args=["cis-k8s"]), {"scope": fleet.scope.name}).content.decode()
    query = f"scope={fleet.scope.name}&framework=cis-k8s"
    assert as_of_choices(page) == [
        *(f"findings:{fmt}?{query}" for fmt in ("csv", "jsonl", "xlsx")),
        f"scorecards:csv?{query}",
        f"oscal:json?{query}",
        f"report:html?{query}",
        f"report:pdf?{query}",
        f"bundle:zip?{query}",
    ]
    assert [c.split("?")[0] for c in as_of_choices(client.get(reverse("cluster-list")).content.decode())] == [
        *(f"findings:{fmt}" for fmt in ("csv", "jsonl", "xlsx")),
        "scorecards:csv",
        "oscal:json",
        "bundle:zip",
    ]
    time.sleep(1.1)  # the form names whole seconds: one after the fleet's last evaluation
    then = timezone.now().astimezone(dt.UTC).replace(microsecond=0)
    with django_capture_on_commit_callbacks(execute=True):
        form = {"as_of_export": f"report:html?{query}", "as_of": then.replace(tzinfo=None).isoformat()}
        response = client.post(START, form)
    assert response.status_code == 302 and response["Location"] == START
    export = Export.objects.get()
    assert (export.kind, export.format, export.state, export.as_of) == ("report", "html", Export.State.SUCCEEDED, then)
    assert export.filters == {"scope": fleet.scope.name, "framework": "cis-k8s", "as_of": then.isoformat()}
    report = body(client.get(reverse("export-download", args=[export.pk]))).decode()
    assert f"This report is rebuilt as of {then:%Y-%m-%d %H:%M:%S} UTC from the stored history" in report

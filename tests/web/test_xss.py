"""Names, tags and evidence from Azure are hostile: they render as inert text everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse

from posture.models import Cluster, ControlResult
from tests.conftest import logged_in
from tests.web.conftest import HOSTILE

RAW = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;")


def assert_inert(html: str) -> None:
    for raw in RAW:
        assert raw not in html
    assert "onerror=alert(1)>" not in html.replace("&gt;", "")  # no live attribute either


@pytest.fixture
def hostile(make_fleet: Callable[..., Any]) -> Any:
    return make_fleet(6, hostile=True)


@pytest.mark.django_db
def test_hostile_names_and_tags_render_escaped_on_list_detail_and_control_pages(hostile: Any, analyst: Any) -> None:
    client = logged_in(analyst)
    script_cluster = Cluster.objects.get(name=HOSTILE[0])
    failing = ControlResult.objects.filter(cluster=script_cluster, status="fail").values_list("control", flat=True).first()
    pages = [
        reverse("overview"),
        reverse("cluster-list"),
        reverse("cluster-list") + "?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E&tag=%3Cscript%3E",
        reverse("cluster-detail", args=[script_cluster.pk]),
        reverse("cluster-detail", args=[Cluster.objects.get(name=HOSTILE[1]).pk]),
        reverse("control-detail", args=[failing]),
        reverse("benchmark-section", args=["nist-800-190", "4.4.2"]),
        reverse("exception-create") + f"?control={failing}&cluster={script_cluster.pk}",
    ]
    for url in pages:
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert_inert(html)
    detail = client.get(reverse("cluster-detail", args=[script_cluster.pk])).content.decode()
    assert ESCAPED[0] in detail  # shown, as text
    tagged = client.get(reverse("cluster-detail", args=[Cluster.objects.get(name=HOSTILE[1]).pk])).content.decode()
    assert "=HYPERLINK(&quot;http://evil&quot;,&quot;x&quot;)" in tagged  # a tag value, escaped
    listing = client.get(reverse("cluster-list")).content.decode()
    assert ESCAPED[1] in listing


@pytest.mark.django_db
def test_tag_links_put_hostile_text_in_the_url_encoded(hostile: Any, viewer: Any) -> None:
    cluster = Cluster.objects.get(name=HOSTILE[0])
    html = logged_in(viewer).get(reverse("cluster-detail", args=[cluster.pk])).content.decode()
    assert "?tag=%3Cscript%3Ealert%281%29%3C/script%3E%3D%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E" in html


@pytest.mark.django_db
def test_remediation_commands_quote_hostile_names_for_the_shell(hostile: Any, analyst: Any) -> None:
    client = logged_in(analyst)
    cluster = Cluster.objects.get(name=HOSTILE[1])
    html = client.get(reverse("cluster-detail", args=[cluster.pk])).content.decode()
    # ARC-ID-01's command names the cluster: it is one single-quoted shell word, HTML-escaped.
    assert "-n &#x27;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;&#x27; --subscription" in html
    script = b"".join(client.get(reverse("control-remediation", args=["ARC-PL-01"])).streaming_content).decode()
    assert "-n '\"><img src=x onerror=alert(1)>' --subscription" in script
    assert '# "><img src=x onerror=alert(1)> (' in script  # names appear only inside comments or quotes


@pytest.mark.django_db
def test_every_page_sends_a_csp_without_inline_script_or_style(sample: dict[str, Any], admin_client: Any) -> None:
    from tests.web.test_access import EXPECTED, READ

    for name, expected in EXPECTED.items():
        if expected != READ:
            continue
        response = admin_client.get(reverse(name, kwargs=sample.get(name, {})))
        csp = response["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'", name
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, name
        if response["Content-Type"].startswith("text/html"):
            html = response.content.decode()
            assert "<script>" not in html and " style=" not in html and " onclick=" not in html, name
            assert "<script src=" in html  # scripts are static files

"""The demo fleet looks like a real fleet at first sight: the clusters list, sorted by name as a new
user first sees it, opens on ordinary names. The hostile names are still in the fleet, further
down the list, and render as text."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from azure_emulator.fleet.catalog import HOSTILE_NAMES
from posture.models import Cluster, Scan
from posture.scans.request import scan_request
from tests.conftest import logged_in
from web.paging import DEFAULT_PAGE_SIZE

pytestmark = pytest.mark.slow

_spec = importlib.util.spec_from_file_location("demo", Path(__file__).resolve().parents[2] / "scripts" / "demo.py")
assert _spec and _spec.loader
DEMO = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(DEMO)

# Markup, quotes, formula starters, or a first character that is no letter or digit.
HOSTILE_LOOKING = re.compile(r"""[<>"'=+@|&!()]|^[^\w]""")


def names_on(response: Any) -> list[str]:
    return [cluster.name for cluster in response.context["page"]]


@pytest.mark.django_db(transaction=True)
def test_the_demo_fleet_opens_on_ordinary_names_and_keeps_its_hostile_ones_further_down(
    make_emulator: Callable[..., Any], emulator_scope: Callable[..., Any], viewer: Any
) -> None:
    emulator = make_emulator(clusters=int(DEMO.CLUSTERS), seed=int(DEMO.SEED))
    scan, created = scan_request(scope=emulator_scope(emulator, name="demo"), trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert created and scan.state == Scan.State.SUCCEEDED, (scan.state, scan.error)
    client = logged_in(viewer)

    first_page = names_on(client.get(reverse("cluster-list")))
    assert len(first_page) == DEFAULT_PAGE_SIZE
    assert [name for name in first_page if HOSTILE_LOOKING.search(name)] == []

    hostile = {name[:260] for name in HOSTILE_NAMES}  # names are stored cut to 260 characters
    assert hostile <= set(Cluster.objects.values_list("name", flat=True))
    last = client.get(reverse("cluster-list"), {"sort": "-name"})
    assert hostile <= set(names_on(last))
    html = last.content.decode()
    assert "test-&lt;script&gt;alert(1)&lt;script&gt;" in html and "test-&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert" not in html and "<img src=x" not in html

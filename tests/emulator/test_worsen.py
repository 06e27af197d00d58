"""The fleet's documented "worse" change: the same clusters every time, only connected clusters on
a private path, which afterwards reach Azure directly."""

from __future__ import annotations

import pytest

from azure_emulator.fleet import generate_fleet
from azure_emulator.fleet.worsen import uses_private_path, worsen

from .conftest import NOW


def test_worsen_switches_off_the_private_path_of_the_first_eligible_clusters_in_id_order() -> None:
    fleet = generate_fleet(60, 11, now=NOW)
    eligible = sorted((row["id"] for row in fleet.clusters() if uses_private_path(row)), key=str.lower)
    assert len(eligible) > 3

    changed = worsen(fleet, 3)

    assert changed == eligible[:3]
    assert changed == worsen(generate_fleet(60, 11, now=NOW), 3)  # deterministic
    for cluster_id in changed:
        props = fleet.cluster(cluster_id)["properties"]
        assert props["connectivityStatus"] == "Connected"
        assert props["privateLinkState"] == "Disabled" and props["gateway"] == {"enabled": False}
        assert not uses_private_path(fleet.cluster(cluster_id))
    untouched = {row["id"]: row for row in generate_fleet(60, 11, now=NOW).clusters()}
    assert {row["id"] for row in fleet.clusters() if row != untouched[row["id"]]} == set(changed)  # nothing else
    # Run again, it takes the next ones: the changed clusters no longer qualify.
    assert worsen(fleet, 2) == eligible[3:5]


def test_worsen_takes_what_there_is_and_refuses_a_negative_count() -> None:
    fleet = generate_fleet(40, 3, now=NOW)
    everything = worsen(fleet, 10_000)
    assert everything and not any(uses_private_path(row) for row in fleet.clusters())
    with pytest.raises(ValueError, match="0 or more"):
        worsen(fleet, -1)

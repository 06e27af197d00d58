"""Remediation scripts run as downloaded: every control's script, filled with the emulator's
hostile names, passes `sh -n` and shellcheck; a value the analyst must choose is a variable that
stops the script when unset, and every Azure value reaches `az` as exactly one argument."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.urls import reverse

from azure_emulator.fleet.catalog import HOSTILE_NAMES, HOSTILE_TEXT
from posture.catalog.controls import CHANGES, CONTROLS, CONTROLS_BY_ID
from posture.models import Scan
from posture.remediation.script import remediation_script
from posture.scans.request import scan_request
from tests.conftest import logged_in, unavailable

HOSTILE = HOSTILE_NAMES + HOSTILE_TEXT
# What a placeholder-free run needs: every variable the catalog's commands name.
ANALYST_VALUES = {
    "PRIVATE_LINK_SCOPE_ID": "/subscriptions/s/resourceGroups/net/providers/Microsoft.HybridCompute/privateLinkScopes/pls",
    "NETWORK_RG": "net-rg",
    "VNET": "hub vnet",
    "SUBNET": "pe",
    "GATEWAY_NAME": "gw",
    "GATEWAY_RG": "gw-rg",
    "GATEWAY_ID": "/subscriptions/s/resourceGroups/gw-rg/providers/Microsoft.HybridCompute/gateways/gw",
    "VAULT": "kv1",
    "VAULT_ID": "/subscriptions/s/resourceGroups/kv/providers/Microsoft.KeyVault/vaults/kv1",
}
# Records each call's arguments, NUL-separated, one call per line of the log.
FAKE_CLI = '#!/bin/sh\n{ printf \'%s\\0\' "$(basename "$0")" "$@"; printf \'\\n\'; } >> "$CLI_LOG"\n'


def hostile_targets() -> list[dict[str, Any]]:
    """One cluster per hostile name, every field hostile; every other one without a scope id."""
    return [
        {
            "name": name,
            "resource_group": name,
            "subscription_id": name,
            "location": name,
            "id": f"/subscriptions/{name}/resourceGroups/{name}/providers/Microsoft.Kubernetes/connectedClusters/{name}",
            "scope_id": name if i % 2 else None,
        }
        for i, name in enumerate(HOSTILE)
    ]


def script_for(control_id: str, targets: list[dict[str, Any]]) -> str:
    return "".join(remediation_script(CONTROLS_BY_ID[control_id], targets, "hostile"))


def check_shell(script: str, path: Path) -> None:
    for tool in ("sh", "shellcheck"):
        if not shutil.which(tool):
            unavailable(f"{tool} (apt-get install shellcheck)")
    path.write_text(script, encoding="utf-8")
    syntax = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    lint = subprocess.run(["shellcheck", "--shell=sh", str(path)], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def run_script(script: str, tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], list[list[str]], Path]:
    """Run the script in an empty directory with fake `az` and `kubectl` first on PATH."""
    bin_dir, work = tmp_path / "bin", tmp_path / "work"
    bin_dir.mkdir()
    work.mkdir()
    for cli in ("az", "kubectl"):
        (bin_dir / cli).write_text(FAKE_CLI, encoding="utf-8")
        (bin_dir / cli).chmod(0o755)
    (tmp_path / "script.sh").write_text(script, encoding="utf-8")
    log = tmp_path / "calls.log"
    full_env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "CLI_LOG": str(log), **env}
    done = subprocess.run(["sh", str(tmp_path / "script.sh")], cwd=work, env=full_env, capture_output=True, text=True)
    calls = [line.split("\0") for line in log.read_text(encoding="utf-8").split("\0\n")[:-1]] if log.exists() else []
    return done, calls, work


def commented_commands(script: str) -> list[tuple[str, str]]:
    """(the line above, the command) for every line of the script that runs a command."""
    lines = script.splitlines()
    return [(lines[i - 1], line) for i, line in enumerate(lines) if line and not line.startswith(("#", ":", "set -eu"))]


def test_a_script_of_read_only_commands_does_not_say_it_changes_azure() -> None:
    # ARC-NP-01's only command is `az aksarc show`; the header said "every command changes Azure resources".
    script = script_for("ARC-NP-01", hostile_targets())
    header = script[: script.index("set -eu")]
    assert "changes Azure" not in header and "running this script changes nothing" in header
    commands = commented_commands(script)
    assert commands and all(command.startswith("az aksarc show ") for _, command in commands)
    assert {above for above, _ in commands} == {"# Only reads, changes nothing:"}


@pytest.mark.parametrize("control_id", [c.id for c in CONTROLS if c.remediation.commands])
def test_every_command_in_a_script_says_whether_it_changes_azure_or_only_reads(control_id: str) -> None:
    control = CONTROLS_BY_ID[control_id]
    script = script_for(control_id, hostile_targets()[:1])
    header = script[: script.index("set -eu")]
    changing = [c.effect == CHANGES for c in control.remediation.commands]
    commands = commented_commands(script)
    assert len(commands) == len(changing)
    for (above, _), changes in zip(commands, changing, strict=True):
        assert above == ("# Changes Azure resources:" if changes else "# Only reads, changes nothing:")
    if all(changing):
        assert "every command changes Azure resources" in header
    elif any(changing):
        assert 'commands marked "Changes Azure resources" change them' in header
    else:
        assert "changes nothing" in header and "changes Azure" not in header


@pytest.mark.parametrize("control_id", [c.id for c in CONTROLS])
def test_every_controls_script_with_hostile_names_passes_sh_n_and_shellcheck(control_id: str, tmp_path: Path) -> None:
    check_shell(script_for(control_id, hostile_targets()), tmp_path / f"{control_id}.sh")


@pytest.mark.parametrize("control_id", ["ARC-PL-01", "ARC-PL-03", "ARC-NET-01", "ARC-KV-01"])
def test_a_script_stops_before_any_command_until_the_analysts_values_are_set(control_id: str, tmp_path: Path) -> None:
    done, calls, work = run_script(script_for(control_id, hostile_targets()), tmp_path, {})
    assert done.returncode != 0 and "set " in done.stderr
    assert calls == [] and list(work.iterdir()) == []  # no command ran, no `-n` or `--subnet` file appeared


@pytest.mark.parametrize("control_id", ["ARC-PL-02", "ARC-PL-03"])
def test_a_missing_private_link_scope_stops_the_script_before_its_first_cluster(control_id: str, tmp_path: Path) -> None:
    # The first cluster has a scope id, the second has none: the analyst's scope is still checked first.
    targets = hostile_targets()[1:3]
    assert targets[0]["scope_id"] and not targets[1]["scope_id"]
    values = {k: v for k, v in ANALYST_VALUES.items() if k != "PRIVATE_LINK_SCOPE_ID"}
    done, calls, _work = run_script(script_for(control_id, targets), tmp_path, values)
    assert done.returncode != 0 and "PRIVATE_LINK_SCOPE_ID" in done.stderr
    assert calls == []


def test_with_the_values_set_every_hostile_name_reaches_az_as_one_argument(tmp_path: Path) -> None:
    targets = hostile_targets()
    done, calls, work = run_script(script_for("ARC-PL-03", targets), tmp_path, ANALYST_VALUES)
    assert done.returncode == 0, done.stderr
    assert list(work.iterdir()) == []
    assert len(calls) == len(targets)
    for call, target in zip(calls, targets, strict=True):
        args = dict(zip(call[4::2], call[5::2], strict=False))
        assert call[:4] == ["az", "network", "private-endpoint", "create"]
        assert args["-g"] == "net-rg" and args["--vnet-name"] == "hub vnet" and args["--subnet"] == "pe"
        assert args["-n"] == f"pe-{target['name']}" and args["--connection-name"] == f"{target['name']}-arc"
        assert args["-l"] == target["location"]
        assert args["--private-connection-resource-id"] == (target["scope_id"] or ANALYST_VALUES["PRIVATE_LINK_SCOPE_ID"])


def test_the_gateway_scripts_allowed_features_star_is_not_a_glob(tmp_path: Path) -> None:
    script = script_for("ARC-NET-01", hostile_targets()[:1])
    done, calls, work = run_script(script.replace("set -eu\n", "set -eu\ntouch glob-bait\n"), tmp_path, ANALYST_VALUES)
    assert done.returncode == 0, done.stderr
    create = next(call for call in calls if call[1:3] == ["arcgateway", "create"])
    assert create[create.index("--allowed-features") + 1] == "*"
    assert (work / "glob-bait").exists()  # the glob had a file to expand to, and did not


@pytest.mark.django_db(transaction=True)
def test_the_downloaded_script_of_every_control_passes_shellcheck_on_the_emulator_fleet(
    make_emulator: Callable[..., Any], emulator_scope: Callable[..., Any], admin_user: Any, tmp_path: Path
) -> None:
    emulator = make_emulator(clusters=60, seed=7)
    scan, created = scan_request(scope=emulator_scope(emulator), trigger=Scan.Trigger.COMMAND)
    scan.refresh_from_db()
    assert created and scan.state == Scan.State.SUCCEEDED, (scan.state, scan.error)
    client = logged_in(admin_user)
    hostile_seen = 0
    for control in CONTROLS:
        response = client.get(reverse("control-remediation", args=[control.id]))
        script = b"".join(response.streaming_content).decode()
        hostile_seen += sum(f"# {name} (" in script for name in HOSTILE_NAMES)
        check_shell(script, tmp_path / f"{control.id}.sh")
    assert hostile_seen  # the emulator's hostile names are among the failing clusters

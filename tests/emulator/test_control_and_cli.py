"""Driving the emulator from another process: the /_emu/ HTTP API and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from azure_emulator import Emulator
from azure_emulator.messages import Request

from .helpers import fetch_token, query, subscriptions

REPO = Path(__file__).resolve().parents[2]


def test_the_control_api_queues_faults_and_reads_the_log_and_stats(http: requests.Session, emu: Emulator, token: str) -> None:
    queued = http.post(
        f"{emu.base_url}/_emu/faults",
        json=[{"type": "respond", "kind": "arg", "status": 503}, {"type": "slow", "kind": "arm", "seconds": 0.01}],
    )
    assert [f["type"] for f in queued.json()["pending"]] == ["respond", "slow"]
    assert query(http, emu, token, {"query": "resources | take 1"}).status_code == 503
    log = http.get(f"{emu.base_url}/_emu/log", params={"kind": "arg"}).json()["requests"]
    assert len(log) == 1
    assert log[0]["headers"]["authorization"] == "Bearer <redacted>"
    assert (log[0]["status"], log[0]["fault"], log[0]["body"]) == (503, "respond", {"query": "resources | take 1"})
    stats = http.get(f"{emu.base_url}/_emu/stats").json()
    assert stats["requests"]["arg"] == 1 and stats["faults_applied"] == 1 and stats["tokens_issued"] == 1
    assert http.post(f"{emu.base_url}/_emu/reset").json() == {"reset": True}
    assert http.get(f"{emu.base_url}/_emu/faults").json()["pending"] == []
    assert http.get(f"{emu.base_url}/_emu/log", params={"kind": "arg"}).json()["requests"] == []
    assert "arg" not in http.get(f"{emu.base_url}/_emu/stats").json()["requests"]
    bad = http.post(f"{emu.base_url}/_emu/faults", json={"type": "explode", "kind": "arg"})
    assert bad.status_code == 400


def test_the_control_api_configures_quota_and_token_lifetime(http: requests.Session, emu: Emulator) -> None:
    config = http.post(f"{emu.base_url}/_emu/config", json={"quota": [1, 30], "token_lifetime": 60}).json()
    assert config == {"quota": [1, 30.0], "token_lifetime": 60, "arm_throttle": [250, 25.0], "quota_retry_after": False}
    token = fetch_token(http, emu).json()
    assert token["expires_in"] == 60
    statuses = [query(http, emu, token["access_token"], {"query": "resources | take 1"}).status_code for _ in range(2)]
    assert statuses == [200, 429]
    assert http.post(f"{emu.base_url}/_emu/config", json={"colour": "red"}).status_code == 400


def test_the_control_api_mutates_a_cluster_and_queries_see_it(http: requests.Session, emu: Emulator, token: str) -> None:
    cluster = next(emu.fleet.clusters())
    text = (
        "resources | where type =~ 'microsoft.kubernetes/connectedclusters' | project id, status = tostring(properties.connectivityStatus)"
    )
    body = {"subscriptions": [cluster["subscriptionId"]], "query": text, "options": {"$top": 1000}}
    original = cluster["properties"].get("connectivityStatus")
    url = f"{emu.base_url}/_emu/fleet/cluster"
    try:
        patched = http.post(url, json={"id": cluster["id"], "patch": {"properties": {"connectivityStatus": "Expired"}}})
        assert patched.json()["cluster"]["properties"]["connectivityStatus"] == "Expired"
        rows = {r["id"]: r["status"] for r in query(http, emu, token, body).json()["data"]}
        assert rows[cluster["id"]] == "Expired"
        http.post(url, json={"id": cluster["id"], "action": "remove"})
        assert cluster["id"] not in {r["id"] for r in query(http, emu, token, body).json()["data"]}
        restored = http.post(url, json={"id": cluster["id"], "action": "restore"}).json()["cluster"]
        assert restored["id"] == cluster["id"]
        assert http.post(url, json={"id": cluster["id"] + "x", "patch": {}}).status_code == 404
    finally:
        emu.fleet.update_cluster(cluster["id"], {"properties": {"connectivityStatus": original}})
    summary = http.get(f"{emu.base_url}/_emu/fleet").json()
    assert summary["subscriptions"] == subscriptions(emu)
    assert sorted(summary["management_groups"]["contoso-landingzones"]) == sorted(emu.fleet.subscriptions_under("contoso-landingzones"))


def test_the_control_api_answers_loopback_clients_only(emu: Emulator) -> None:
    from azure_emulator import control

    response = control.handle(emu._app, Request("GET", "/_emu/stats", {}, b"", client="10.1.2.3"))
    assert response.status == 403


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_prints_one_json_line_and_exits_cleanly_on_a_signal(tmp_path: Path, stop_signal: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "azure_emulator",
            "serve",
            "--clusters",
            "40",
            "--seed",
            "3",
            "--quota",
            "15/5",
            "--token-lifetime",
            "600",
            "--workdir",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert {"base_url", "ca_file", "tenant_id", "client_id", "client_secret", "subscriptions", "management_groups"} <= set(info)
        assert info["subscriptions"] == 2 and "contoso-landingzones" in info["management_groups"]
        assert Path(info["ca_file"]).parent == tmp_path
        session = requests.Session()
        session.trust_env = False
        metadata = session.get(f"{info['base_url']}/{info['tenant_id']}/v2.0/.well-known/openid-configuration", verify=info["ca_file"])
        assert metadata.status_code == 200
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
        assert process.stdout.read() == ""  # exactly one line
    finally:
        if process.poll() is None:
            process.kill()

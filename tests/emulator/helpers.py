"""Helpers for raw HTTP calls to the emulator."""

from __future__ import annotations

from typing import Any

import requests

from azure_emulator import Emulator

ARG_URL = "/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"


def fetch_token(http: requests.Session, emu: Emulator, tenant: str | None = None, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "client_credentials",
        "client_id": emu.client_id,
        "client_secret": emu.client_secret,
        "scope": MANAGEMENT_SCOPE,
        **overrides,
    }
    return http.post(f"{emu.base_url}/{tenant or emu.tenant_id}/oauth2/v2.0/token", data=form)


def query(
    http: requests.Session, emu: Emulator, token: str, body: dict[str, Any], *, url: str = ARG_URL, headers: dict[str, str] | None = None
) -> requests.Response:
    all_headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})}
    return http.post(emu.base_url + url, json=body, headers=all_headers)


def subscriptions(emu: Emulator) -> list[str]:
    return sorted(emu.fleet.subscriptions)

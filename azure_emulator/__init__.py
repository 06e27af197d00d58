"""HTTPS emulator of the Azure endpoints Arc Posture uses (Entra ID, Resource Graph, ARM GETs).

Test, demo and benchmark infrastructure only; production code never imports it.

    with Emulator(clusters=200, seed=7) as emu:
        credential = ClientSecretCredential(emu.tenant_id, emu.client_id, emu.client_secret,
                                            authority=emu.base_url, disable_instance_discovery=True,
                                            connection_verify=emu.ca_file)
"""

from __future__ import annotations

from azure_emulator.emulator import Emulator, cloud_env
from azure_emulator.fleet import Fleet, generate_fleet

__all__ = ["Emulator", "Fleet", "cloud_env", "generate_fleet"]

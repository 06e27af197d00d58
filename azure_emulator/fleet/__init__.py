"""Generated Azure tenant behind the emulator (see generator.py and model.py)."""

from __future__ import annotations

from azure_emulator.fleet.generator import generate_fleet
from azure_emulator.fleet.model import TABLES, Fleet, ManagementGroup, Subscription

__all__ = ["TABLES", "Fleet", "ManagementGroup", "Subscription", "generate_fleet"]

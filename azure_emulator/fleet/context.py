"""Shared state of one generation run: the RNG, the output tables and coverage counters."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure_emulator.fleet.model import TABLES, Row


@dataclass
class GenContext:
    seed: int
    tenant_id: str
    now: datetime
    hub_subscription: str
    rng: random.Random
    tables: dict[str, dict[str, list[Row]]] = field(default_factory=lambda: {table: {} for table in TABLES})
    instances: dict[str, Row] = field(default_factory=dict)
    # Ordinals of populations (aks clusters, extensions, ...) that drive coverage lists.
    ordinals: Counter[str] = field(default_factory=Counter)

    def next(self, population: str) -> int:
        index = self.ordinals[population]
        self.ordinals[population] += 1
        return index

    def add(self, table: str, subscription_id: str, row: Row) -> None:
        self.tables[table].setdefault(subscription_id, []).append(row)

    def base(self, resource_id: str, name: str, type_: str, sub: str, rg_lower: str) -> dict[str, Any]:
        """Top-level ARG columns every resource row has (null columns are left out)."""
        return {
            "id": resource_id,
            "name": name,
            "type": type_,
            "tenantId": self.tenant_id,
            "resourceGroup": rg_lower,
            "subscriptionId": sub,
        }

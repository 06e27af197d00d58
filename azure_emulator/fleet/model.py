"""The emulated tenant: subscriptions, management groups, ARG tables and ARM-only resources.

Rows are stored per table and per subscription, each list sorted by lower-cased id, so a query over
a batch of subscriptions reads only those lists and gets ARG's stable id order for free. Rows are
never mutated in place: an update swaps in a new dict, so a query running on another thread sees
either the old or the new row.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Row = dict[str, Any]

TABLES = (
    "resources",
    "kubernetesconfigurationresources",
    "policyresources",
    "securityresources",
    "resourcecontainers",
)
CONNECTED_CLUSTER = "microsoft.kubernetes/connectedclusters"
TENANT_LEVEL = ""  # index key for rows outside any subscription (management groups)


@dataclass(frozen=True)
class Subscription:
    subscription_id: str
    display_name: str
    management_group: str
    state: str
    is_hub: bool


@dataclass(frozen=True)
class ManagementGroup:
    name: str
    display_name: str
    parent: str | None


@dataclass
class _RemovedCluster:
    subscription_id: str
    rows: dict[str, list[Row]]
    instance: Row | None


@dataclass
class Fleet:
    tenant_id: str
    seed: int
    cluster_count: int
    generated_at: datetime
    subscriptions: dict[str, Subscription]  # lower-case id -> subscription
    management_groups: dict[str, ManagementGroup]  # lower-case name -> group
    tables: dict[str, dict[str, list[Row]]]  # table -> subscription (or TENANT_LEVEL) -> rows
    provisioned_cluster_instances: dict[str, Row]  # lower-case cluster id -> ARM body
    version: int = 0
    _removed: dict[str, _RemovedCluster] = field(default_factory=dict, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- scope ----------------------------------------------------------------------------------
    def subscriptions_under(self, group: str) -> list[str]:
        """Subscriptions below a management group, recursively (lower-case ids, sorted)."""
        wanted = {group.lower()}
        changed = True
        while changed:
            changed = False
            for name, mg in self.management_groups.items():
                if name not in wanted and mg.parent is not None and mg.parent.lower() in wanted:
                    wanted.add(name)
                    changed = True
        return sorted(sub_id for sub_id, sub in self.subscriptions.items() if sub.management_group.lower() in wanted)

    def groups_under(self, group: str) -> set[str]:
        names = {group.lower()}
        for name, mg in self.management_groups.items():
            if mg.parent is not None and mg.parent.lower() == group.lower():
                names |= self.groups_under(name)
        return names

    def rows(self, table: str, subscription_ids: Iterable[str], *, tenant_rows: bool) -> list[Row]:
        """Rows of the given subscriptions in lower-case id order (tenant-level rows first)."""
        by_sub = self.tables[table]
        with self._lock:
            result = list(by_sub.get(TENANT_LEVEL, ())) if tenant_rows else []
            for sub_id in sorted(s.lower() for s in subscription_ids):
                result.extend(by_sub.get(sub_id, ()))
        return result

    def row_count(self, table: str) -> int:
        return sum(len(rows) for rows in self.tables[table].values())

    # -- clusters -------------------------------------------------------------------------------
    def clusters(self) -> Iterator[Row]:
        for rows in list(self.tables["resources"].values()):
            for row in rows:
                if row.get("type") == CONNECTED_CLUSTER:
                    yield row

    def cluster(self, cluster_id: str) -> Row | None:
        found = self._find("resources", cluster_id)
        return found[1] if found else None

    def update_cluster(self, cluster_id: str, patch: dict[str, Any]) -> Row:
        """Apply a JSON merge patch (RFC 7386; null deletes) to the cluster's ARG row."""
        with self._lock:
            found = self._find("resources", cluster_id)
            if found is None:
                raise KeyError(cluster_id)
            rows, row = found
            new = _merge_patch(copy.deepcopy(row), patch)
            new["id"], new["type"] = row["id"], row["type"]  # identity is not patchable
            rows[rows.index(row)] = new
            self.version += 1
            return new

    def update_provisioned_cluster_instance(self, cluster_id: str, patch: dict[str, Any]) -> Row:
        with self._lock:
            key = cluster_id.lower()
            new = _merge_patch(copy.deepcopy(self.provisioned_cluster_instances[key]), patch)
            self.provisioned_cluster_instances[key] = new
            self.version += 1
            return new

    def remove_cluster(self, cluster_id: str) -> None:
        """Remove a cluster with its extensions, policy states and assessments (restorable)."""
        key = cluster_id.lower()
        with self._lock:
            found = self._find("resources", cluster_id)
            if found is None:
                raise KeyError(cluster_id)
            sub_id = found[1]["subscriptionId"].lower()
            removed: dict[str, list[Row]] = {}
            for table, by_sub in self.tables.items():
                rows = by_sub.get(sub_id, [])
                keep = [r for r in rows if not _belongs_to(r, key)]
                removed[table] = [r for r in rows if _belongs_to(r, key)]
                by_sub[sub_id] = keep
            instance = self.provisioned_cluster_instances.pop(key, None)
            self._removed[key] = _RemovedCluster(sub_id, removed, instance)
            self.version += 1

    def restore_cluster(self, cluster_id: str) -> None:
        key = cluster_id.lower()
        with self._lock:
            removed = self._removed.pop(key)
            for table, rows in removed.rows.items():
                merged = self.tables[table].setdefault(removed.subscription_id, []) + rows
                merged.sort(key=lambda r: r["id"].lower())
                self.tables[table][removed.subscription_id] = merged
            if removed.instance is not None:
                self.provisioned_cluster_instances[key] = removed.instance
            self.version += 1

    def add_empty_subscriptions(self, count: int) -> list[str]:
        """Add `count` readable subscriptions holding no resources (for scopes over 1000 subscriptions)."""
        from azure_emulator.fleet.rand import stable_guid

        with self._lock:
            group = next(mg for mg in self.management_groups.values() if mg.parent is not None)
            added = []
            for index in range(count):
                sub_id = stable_guid(f"empty-subscription-{len(self.subscriptions)}-{index}", self.seed)
                self.subscriptions[sub_id] = Subscription(sub_id, f"empty-{index:05d}", group.name, "Enabled", False)
                self.tables["resourcecontainers"].setdefault(sub_id, []).append(
                    {
                        "id": f"/subscriptions/{sub_id}",
                        "name": f"empty-{index:05d}",
                        "type": "microsoft.resources/subscriptions",
                        "tenantId": self.tenant_id,
                        "subscriptionId": sub_id,
                        "tags": {},
                        "properties": {
                            "state": "Enabled",
                            "managementGroupAncestorsChain": [{"name": group.name, "displayName": group.display_name}],
                        },
                    }
                )
                added.append(sub_id)
            self.version += 1
            return added

    def _find(self, table: str, resource_id: str) -> tuple[list[Row], Row] | None:
        key = resource_id.lower()
        parts = key.split("/")
        if len(parts) < 3 or parts[1] != "subscriptions":
            return None
        for row in self.tables[table].get(parts[2], ()):
            if row["id"].lower() == key:
                return self.tables[table][parts[2]], row
        return None


def _belongs_to(row: Row, cluster_key: str) -> bool:
    row_id = row["id"].lower()
    if row_id == cluster_key or row_id.startswith(cluster_key + "/"):
        return True
    properties = row.get("properties")
    resource_id = properties.get("resourceId") if isinstance(properties, dict) else None
    return isinstance(resource_id, str) and resource_id.lower() == cluster_key


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target

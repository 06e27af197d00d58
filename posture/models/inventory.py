from __future__ import annotations

from django.db import models


class NetworkPath(models.TextChoices):
    PRIVATE_LINK = "private_link", "Private Link"
    GATEWAY = "gateway", "Arc gateway"
    BOTH = "both", "Private Link and Arc gateway"
    DIRECT = "direct", "Direct to public endpoints"
    UNKNOWN = "unknown", "Unknown"


class Cluster(models.Model):
    """An Arc-enabled Kubernetes cluster as last seen in Azure Resource Graph.

    `key` is the lower-cased ARM id (Python's lower(), which folds non-ASCII names too; SQL
    LOWER() does not everywhere): Azure compares resource ids case-insensitively and ARG returns
    the same id in different casings from different tables. `facts` is the normalized
    record the controls read; it is rewritten only when its hash changes.
    """

    key = models.CharField(max_length=1024, unique=True)
    arm_id = models.CharField(max_length=1024)
    name = models.CharField(max_length=260)
    subscription_id = models.CharField(max_length=36, db_index=True)
    resource_group = models.CharField(max_length=90)
    location = models.CharField(max_length=64, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    scope = models.ForeignKey("posture.Scope", null=True, blank=True, on_delete=models.SET_NULL, related_name="clusters")
    # Filterable copies of facts.
    kind = models.CharField(max_length=64, blank=True)
    distribution = models.CharField(max_length=64, blank=True)
    infrastructure = models.CharField(max_length=64, blank=True)
    connectivity_status = models.CharField(max_length=32, blank=True)
    last_connectivity_at = models.DateTimeField(null=True, blank=True)
    network_path = models.CharField(max_length=16, choices=NetworkPath.choices, default=NetworkPath.UNKNOWN)

    facts = models.JSONField(default=dict)
    facts_hash = models.CharField(max_length=64, blank=True)
    facts_scan = models.ForeignKey(
        "posture.Scan",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The scan whose data `facts` holds",
    )
    last_seen_scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    # Why the last scan refused this cluster's rows ([{query, field, issue}]); `facts` then still
    # holds the last good data. Empty once a scan stores well-formed rows again.
    data_problems = models.JSONField(default=list, blank=True)
    # Current evaluation (see posture/evaluate); results_hash lets a no-change run skip the cluster.
    score = models.FloatField(null=True, blank=True)
    grade = models.CharField(max_length=2, blank=True)
    coverage = models.FloatField(null=True, blank=True)
    failing = models.PositiveSmallIntegerField(default=0)
    results_hash = models.CharField(max_length=64, blank=True)
    # What the last evaluation saw (facts, context, staleness) and found, so that a run over
    # unchanged inputs can reuse the verdicts without reading facts or running checks.
    evaluated_inputs = models.CharField(max_length=64, blank=True)
    evaluated_refs = models.TextField(blank=True, help_text="Context entries the verdicts read (posture/evaluate/context.py)")
    statuses = models.CharField(max_length=64, blank=True, help_text="Control statuses in catalog order, one letter each")
    evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        indexes = [
            models.Index(fields=["scope", "last_seen_scan"], name="cluster_scope_seen"),
            # The cluster list's default order and "last contact" order, over current clusters.
            models.Index(fields=["name", "id"], name="cluster_current_name", condition=models.Q(removed_at__isnull=True)),
            # Exports as of a past time and of removed clusters too page every cluster by name.
            models.Index(fields=["name", "id"], name="cluster_name"),
            models.Index(
                fields=["last_connectivity_at", "id"], name="cluster_current_contact", condition=models.Q(removed_at__isnull=True)
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.key = self.arm_id.lower()
        super().save(*args, **kwargs)


# What Azure says about a cluster, copied into filterable columns (posture/store/facts.py).
CLUSTER_DESCRIPTION = (
    "name",
    "subscription_id",
    "resource_group",
    "location",
    "tags",
    "scope_id",
    "distribution",
    "infrastructure",
    "connectivity_status",
    "last_connectivity_at",
    "network_path",
)
# What a list of clusters loads: its description and its current score (posture/read).
CLUSTER_LIST_COLUMNS = ("pk", *CLUSTER_DESCRIPTION, "score", "grade", "coverage", "failing", "removed_at")
# What an evaluation run reads of each cluster besides its facts: its last verdicts' digests and
# the fields its snapshot tallies (posture/scans/evaluation.py).
CLUSTER_EVALUATION_COLUMNS = (
    "pk",
    "facts_hash",
    "results_hash",
    "evaluated_inputs",
    "evaluated_refs",
    "statuses",
    "score",
    "grade",
    "coverage",
    "subscription_id",
    "resource_group",
    "network_path",
    "connectivity_status",
    "last_connectivity_at",
)
# What a scan rewrites when a cluster's facts change (an upsert on `key`).
CLUSTER_UPDATE_FIELDS = (
    "arm_id",
    *CLUSTER_DESCRIPTION,
    "kind",
    "facts",
    "facts_hash",
    "facts_scan_id",
    "last_seen_scan_id",
    "last_seen_at",
    "removed_at",
    "data_problems",
)


# What a ClusterHistory row keeps of the row it replaced: what an export shows of a cluster
# (posture/exports/rows.py IDENTITY and SCORECARD_COLUMNS) and the filterable description.
CLUSTER_HISTORY_FIELDS = (
    "arm_id",
    "name",
    "subscription_id",
    "resource_group",
    "location",
    "tags",
    "kind",
    "distribution",
    "infrastructure",
    "connectivity_status",
    "network_path",
    "score",
    "grade",
    "coverage",
    "last_connectivity_at",
    "facts_scan_id",
)
# A change of these records the row it replaces; the last two change with every contact and are
# only carried along (100,000 clusters would write 100,000 rows a scan).
CLUSTER_HISTORY_CHANGES = CLUSTER_HISTORY_FIELDS[:-2]


class ClusterHistory(models.Model):
    """A cluster's description and score as they stood until `replaced_at`, kept when a scan
    rewrote its description or an evaluation its score (posture/store/cluster_history.py), so an
    export as of a past time shows the cluster as it was (posture/exports/cluster_history.py).
    `last_connectivity_at` and `facts_scan_id` are those the replaced row held: the contact time
    the scan `facts_scan_id` stored. `scan` is the scan that replaced the row, if any."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="+", db_index=False)
    scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False)
    replaced_at = models.DateTimeField()
    arm_id = models.CharField(max_length=1024)
    name = models.CharField(max_length=260)
    subscription_id = models.CharField(max_length=36)
    resource_group = models.CharField(max_length=90)
    location = models.CharField(max_length=64, blank=True)
    tags = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=64, blank=True)
    distribution = models.CharField(max_length=64, blank=True)
    infrastructure = models.CharField(max_length=64, blank=True)
    connectivity_status = models.CharField(max_length=32, blank=True)
    network_path = models.CharField(max_length=16, choices=NetworkPath.choices)
    score = models.FloatField(null=True, blank=True)
    grade = models.CharField(max_length=2, blank=True)
    coverage = models.FloatField(null=True, blank=True)
    last_connectivity_at = models.DateTimeField(null=True, blank=True)
    # A plain id, as VerdictHistory's governance ids: no constraint to check when its scan is
    # deleted. `scan` above is a foreign key without an index: deleting a scan scans this table.
    facts_scan_id = models.UUIDField(null=True, blank=True)

    class Meta:
        # The one index: a chunk of clusters' first replacement after a date.
        indexes = [models.Index(fields=["cluster", "replaced_at"], name="cluster_history_key")]

    def __str__(self) -> str:
        return f"{self.name} until {self.replaced_at:%Y-%m-%d %H:%M}"


class AzureResource(models.Model):
    """A resource the controls join clusters with: Private Link Scopes, private endpoints, Arc
    gateways, logical networks and Key Vaults. They may live in other subscriptions (and
    batches) than the clusters that use them, so they are stored on their own."""

    key = models.CharField(max_length=1024, unique=True)
    arm_id = models.CharField(max_length=1024)
    type = models.CharField(max_length=128, db_index=True)
    name = models.CharField(max_length=260)
    subscription_id = models.CharField(max_length=36, db_index=True)
    location = models.CharField(max_length=64, blank=True)
    scope = models.ForeignKey("posture.Scope", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict)
    data_hash = models.CharField(max_length=64, blank=True)
    last_seen_scan = models.ForeignKey("posture.Scan", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["type", "name"]
        indexes = [models.Index(fields=["scope", "last_seen_scan"], name="resource_scope_seen")]

    def __str__(self) -> str:
        return f"{self.type} {self.name}"


class Subscription(models.Model):
    subscription_id = models.CharField(max_length=36, unique=True)
    name = models.CharField(max_length=260, blank=True)
    state = models.CharField(max_length=32, blank=True)
    scope = models.ForeignKey("posture.Scope", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name", "subscription_id"]

    def __str__(self) -> str:
        return self.name or self.subscription_id

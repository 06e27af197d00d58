from posture.models.access import Access, WorkerHeartbeat
from posture.models.alerts import AlertCursor, AlertRule, AlertSubscription, AlertTrigger, Notification
from posture.models.exports import Export
from posture.models.feed import FeedEntry, FeedHorizon
from posture.models.governance import Attestation, GovernanceEvent, RiskException
from posture.models.identity import ApiToken, ExternalIdentity
from posture.models.inventory import AzureResource, Cluster, ClusterHistory, NetworkPath, Subscription
from posture.models.recipients import AlertOptOut, DigestEntry
from posture.models.results import ChangeEvent, ControlResult, FleetSnapshot, Reason, ScoreHistory, Status, VerdictHistory
from posture.models.scans import QueryEvidence, Scan, ScanBatch, Scope

__all__ = [
    "Access",
    "AlertCursor",
    "AlertOptOut",
    "AlertRule",
    "AlertSubscription",
    "AlertTrigger",
    "ApiToken",
    "Attestation",
    "AzureResource",
    "ChangeEvent",
    "Cluster",
    "ClusterHistory",
    "ControlResult",
    "DigestEntry",
    "Export",
    "FeedEntry",
    "FeedHorizon",
    "ExternalIdentity",
    "FleetSnapshot",
    "GovernanceEvent",
    "NetworkPath",
    "Notification",
    "QueryEvidence",
    "Reason",
    "RiskException",
    "Scan",
    "ScanBatch",
    "Scope",
    "ScoreHistory",
    "Status",
    "Subscription",
    "VerdictHistory",
    "WorkerHeartbeat",
]

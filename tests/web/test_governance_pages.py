"""Attestation and exception pages: forms validate and explain, decisions are versioned."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from posture import governance
from posture.models import Attestation, ControlResult, GovernanceEvent, RiskException
from posture.roles import ADMIN
from tests.conftest import logged_in, make_user
from tests.web.conftest import SUB


def in_days(days: int) -> str:
    return (timezone.now().date() + dt.timedelta(days=days)).isoformat()


def request_exception(user: Any, control: str = "ARC-PL-01", owner: str = "o", days: int = 5) -> Any:
    """An exception requested on the whole test subscription."""
    return governance.exception_request(
        user=user, control=control, subscription_id=SUB, justification="x", owner=owner, expires_at=timezone.now() + dt.timedelta(days=days)
    )


def exception_form(target_cluster: Any, **overrides: Any) -> dict[str, Any]:
    data = {
        "control": "ARC-PL-01",
        "target": "cluster",
        "cluster": target_cluster.arm_id,
        "justification": "Compensated by the site firewall.",
        "owner": "platform-team",
        "expires_on": in_days(30),
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_the_form_is_prefilled_from_a_cluster_control_row(fleet: Any, analyst_client: Any) -> None:
    cluster = fleet.clusters[1]
    html = analyst_client.get(reverse("exception-create") + f"?control=ARC-PL-01&cluster={cluster.pk}").content.decode()
    assert '<option value="ARC-PL-01" selected>' in html
    assert f'value="{cluster.arm_id}"' in html and 'value="cluster" required id="id_target_0" checked' in html
    assert "at most 180 days" in html


@pytest.mark.django_db
def test_requesting_and_approving_an_exception_excepts_the_control(
    fleet: Any, analyst_client: Any, admin_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    cluster = fleet.clusters[1]
    response = analyst_client.post(reverse("exception-create"), exception_form(cluster))
    exception = RiskException.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("exception-detail", args=[exception.pk])
    assert exception.cluster == cluster and exception.requested_by.username == "anna-analyst"
    assert exception.expires_at == dt.datetime.combine(timezone.now().date() + dt.timedelta(days=30), dt.time.min, tzinfo=dt.UTC)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("exception-approve", args=[exception.pk]), {"note": "ok until the firewall change"})
    exception.refresh_from_db()
    assert exception.state == "approved" and exception.decision_note == "ok until the firewall change"
    assert ControlResult.objects.get(cluster=cluster, control="ARC-PL-01").status == "excepted"
    html = admin_client.get(reverse("exception-detail", args=[exception.pk])).content.decode()
    assert "Approved" in html and "Version history" in html and "<strong>Approved</strong> by adam-admin" in html
    assert 'fail → <span class="badge status-excepted">Excepted</span>' in html  # the result it changes


@pytest.mark.django_db
@pytest.mark.parametrize(
    "overrides,field,message",
    [
        ({"expires_on": in_days(400)}, "expires_on", "at most 180 days away"),
        ({"expires_on": in_days(0)}, "expires_on", "must be in the future"),
        ({"cluster": ""}, "cluster", "Enter the cluster&#x27;s resource ID."),
        (
            {"cluster": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Kubernetes/connectedClusters/nope"},
            "cluster",
            "No cluster with this resource ID",
        ),
        ({"target": "subscription", "subscription_id": ""}, "subscription_id", "Enter the subscription ID."),
        ({"target": "subscription", "subscription_id": "not-a-guid"}, "subscription_id", "Enter a subscription GUID."),
        ({"target": "tag", "tag": "=prod"}, "tag", "Enter a tag key, or key=value."),
        ({"owner": ""}, "owner", "This field is required."),
    ],
)
def test_invalid_requests_are_explained_on_the_form(
    fleet: Any, analyst_client: Any, overrides: dict[str, Any], field: str, message: str
) -> None:
    response = analyst_client.post(reverse("exception-create"), exception_form(fleet.clusters[1], **overrides))
    html = response.content.decode()
    assert response.status_code == 200 and not RiskException.objects.exists()
    assert message in html
    assert f'id="id_{field}_error"' in html  # the message sits on its field (aria-describedby)


@pytest.mark.django_db
def test_a_subscription_and_resource_group_target(fleet: Any, analyst_client: Any) -> None:
    data = exception_form(fleet.clusters[1], target="subscription", subscription_id=SUB.upper(), resource_group="rg-1", cluster="")
    assert analyst_client.post(reverse("exception-create"), data).status_code == 302
    exception = RiskException.objects.get()
    assert (exception.cluster, exception.subscription_id, exception.resource_group) == (None, SUB, "rg-1")


@pytest.mark.django_db
def test_four_eyes_refusal_is_shown_as_a_message(fleet: Any, admin_user: Any, admin_client: Any, settings: Any) -> None:
    settings.ARC_EXCEPTION_FOUR_EYES = True
    exception = request_exception(admin_user)
    response = admin_client.post(reverse("exception-approve", args=[exception.pk]), follow=True)
    assert "Separation of duties" in response.content.decode()
    exception.refresh_from_db()
    assert exception.state == "requested"


@pytest.mark.django_db
@pytest.mark.parametrize("four_eyes", [True, False])
def test_the_exception_pages_say_whether_four_eyes_approval_is_on(
    fleet: Any, admin_user: Any, admin_client: Any, settings: Any, four_eyes: bool
) -> None:
    settings.ARC_EXCEPTION_FOUR_EYES = four_eyes
    exception = request_exception(admin_user)
    for page in (reverse("exception-list"), reverse("exception-detail", args=[exception.pk])):
        html = admin_client.get(page).content.decode()
        if four_eyes:
            assert "Four-eyes approval is on" in html and "ARC_EXCEPTION_FOUR_EYES=false" not in html
        else:
            assert "Four-eyes approval is off (<code>ARC_EXCEPTION_FOUR_EYES=false</code>)" in html


@pytest.mark.django_db
def test_reject_and_revoke_are_recorded(fleet: Any, analyst: Any, admin_client: Any) -> None:
    first = request_exception(analyst)
    admin_client.post(reverse("exception-reject", args=[first.pk]), {"note": "fix it instead"})
    second = request_exception(analyst, control="ARC-ID-01")
    governance.exception_approve(exception=second, user=make_user("other-admin", ADMIN))
    admin_client.post(reverse("exception-revoke", args=[second.pk]))
    states = dict(RiskException.objects.values_list("pk", "state"))
    assert states == {first.pk: "rejected", second.pk: "revoked"}
    actions = list(GovernanceEvent.objects.filter(kind="exception", object_id=second.pk).order_by("at").values_list("action", flat=True))
    assert actions == ["created", "approved", "revoked"]
    again = admin_client.post(reverse("exception-revoke", args=[second.pk]), follow=True).content.decode()
    assert "it cannot become revoked" in again


@pytest.mark.django_db
def test_a_requester_may_withdraw_only_their_own_pending_request(fleet: Any, analyst: Any) -> None:
    own = request_exception(analyst)
    client = logged_in(analyst)
    assert "Withdraw the request" in client.get(reverse("exception-detail", args=[own.pk])).content.decode()
    assert client.post(reverse("exception-revoke", args=[own.pk])).status_code == 302
    own.refresh_from_db()
    assert own.state == "revoked"


@pytest.mark.django_db
def test_the_exception_list_filters_by_state_and_shows_the_audit(fleet: Any, analyst: Any, admin_user: Any, viewer_client: Any) -> None:
    soon = request_exception(analyst, owner="soon-owner", days=3)
    governance.exception_approve(exception=soon, user=admin_user)
    request_exception(analyst, control="ARC-ID-01", owner="pending-owner", days=90)
    active = viewer_client.get(reverse("exception-list")).content.decode()
    assert "soon-owner" in active and "pending-owner" not in active
    assert "Expiring soon" in active and "Needs attention" in active
    requested = viewer_client.get(reverse("exception-list") + "?state=requested").content.decode()
    assert "pending-owner" in requested and "soon-owner" not in requested


@pytest.mark.django_db
def test_attesting_from_a_cluster_row_and_revoking(fleet: Any, analyst_client: Any, django_capture_on_commit_callbacks: Any) -> None:
    cluster = fleet.clusters[1]
    data = {
        "control": "ARC-NP-02",
        "target": "tag",
        "tag": "env=dev",
        "statement": "kubectl get networkpolicy -A shows default-deny in every namespace",
        "evidence_url": "https://wiki.example/np",
        "expires_on": in_days(60),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = analyst_client.post(reverse("attestation-create"), data)
    attestation = Attestation.objects.get()
    assert response["Location"] == reverse("attestation-detail", args=[attestation.pk])
    assert (attestation.tag_key, attestation.tag_value) == ("env", "dev")
    assert ControlResult.objects.get(cluster=cluster, control="ARC-NP-02").status == "attested"  # c001 is env=dev
    assert "tag env=dev" in analyst_client.get(reverse("attestation-list")).content.decode()
    analyst_client.post(reverse("attestation-revoke", args=[attestation.pk]))
    attestation.refresh_from_db()
    assert attestation.revoked_at is not None
    html = analyst_client.get(reverse("attestation-list") + "?state=revoked").content.decode()
    assert "Revoked" in html and "kubectl get networkpolicy" in html


@pytest.mark.django_db
def test_an_attestation_longer_than_allowed_is_refused(fleet: Any, analyst_client: Any, settings: Any) -> None:
    settings.ARC_ATTESTATION_MAX_DAYS = 30
    data = {"control": "ARC-NP-02", "target": "subscription", "subscription_id": SUB, "statement": "x", "expires_on": in_days(45)}
    html = analyst_client.post(reverse("attestation-create"), data).content.decode()
    assert "at most 30 days away" in html and not Attestation.objects.exists()


@pytest.mark.django_db
def test_a_decision_with_a_note_too_long_is_refused_not_stripped(fleet: Any, analyst: Any, admin_client: Any) -> None:
    pending = request_exception(analyst)
    html = admin_client.post(reverse("exception-approve", args=[pending.pk]), {"note": "n" * 2001}, follow=True).content.decode()
    pending.refresh_from_db()
    assert pending.state == "requested" and "at most 2000 characters" in html

"""API tokens are shown once, stored as a digest, and stop working when revoked, expired or
their user is deactivated; last use is recorded without a write per request."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from django.utils import timezone

from posture import tokens
from posture.models import ApiToken, ExternalIdentity
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def later(monkeypatch: pytest.MonkeyPatch, **delta: float) -> None:
    """From now on, timezone.now() answers `delta` later than the clock."""
    now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: now() + dt.timedelta(**delta))


def test_the_raw_token_is_never_stored_and_verifies_to_its_row(caplog: pytest.LogCaptureFixture) -> None:
    user = make_user("siem", "viewer")
    with caplog.at_level(logging.DEBUG):
        token, raw = tokens.issue(user, "  SIEM\n pull ", days=30, scopes=["read"])
    row = ApiToken.objects.get()
    assert raw.startswith(f"arcp_{row.prefix}_") and len(raw) > 50
    assert raw not in str(ApiToken.objects.values().get()) and raw not in caplog.text
    assert row.digest == tokens.digest(raw) and row.name == "SIEM pull" and row.scopes == ["read"]
    assert tokens.verify(raw) == token
    assert timezone.now() + dt.timedelta(days=29) < row.expires_at <= timezone.now() + dt.timedelta(days=30)


def test_a_wrong_secret_with_a_real_prefix_is_refused() -> None:
    _, raw = tokens.issue(make_user("siem", "viewer"), "pull")
    assert tokens.verify(raw[:-2] + ("xx" if not raw.endswith("xx") else "yy")) is None
    assert tokens.verify("arcp_nothing") is None and tokens.verify("Bearer " + raw) is None


@pytest.mark.parametrize("ending", ["revoked", "expired", "user deactivated", "user deleted", "token deleted"])
def test_a_token_stops_working_at_once_when(ending: str, monkeypatch: pytest.MonkeyPatch) -> None:
    user = make_user("siem", "viewer")
    token, raw = tokens.issue(user, "pull", days=7)
    assert tokens.verify(raw) == token  # now verified, and cached where a shared cache allows
    if ending == "revoked":
        assert tokens.revoke(token) and not tokens.revoke(token)
    elif ending == "expired":
        later(monkeypatch, days=7, seconds=1)
    elif ending == "user deactivated":
        user.is_active = False
        user.save()
    elif ending == "user deleted":
        user.delete()
    else:
        token.delete()
    assert tokens.verify(raw) is None


def test_a_verified_token_is_not_looked_up_again_where_processes_share_a_cache(django_assert_num_queries: Any) -> None:
    _, raw = tokens.issue(make_user("siem", "viewer"), "pull")
    tokens.verify(raw)
    with django_assert_num_queries(0 if tokens.verified_tokens_cached() else 1):
        assert tokens.verify(raw) is not None
    assert tokens.verify(raw[:-2] + ("xx" if not raw.endswith("xx") else "yy")) is None  # the cache is keyed by the whole token


def test_last_use_is_written_at_most_once_a_minute(django_assert_num_queries: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens.issue(make_user("siem", "viewer"), "pull")
    raw = tokens.issue(make_user("ops", "viewer"), "pull")[1]
    tokens.verify(raw)
    first = ApiToken.objects.get(name="pull", user__username="ops").last_used_at
    assert first is not None
    with django_assert_num_queries(0 if tokens.verified_tokens_cached() else 1):  # the lookup only, or not even that
        tokens.verify(raw)
    later(monkeypatch, minutes=2)
    tokens.verify(raw)
    assert ApiToken.objects.get(user__username="ops").last_used_at >= first + dt.timedelta(minutes=2)
    assert ApiToken.objects.get(user__username="siem").last_used_at is None


@pytest.mark.parametrize(
    ("days", "scopes", "name", "error"),
    [
        (0, [], "x", "between 1 and 90"),
        (91, [], "x", "between 1 and 90"),
        (5, ["admin"], "x", "Unknown scope 'admin'"),
        (5, [], " \n", "Give the token a name"),
    ],
)
def test_a_token_request_out_of_bounds_is_refused_with_the_reason(days: int, scopes: list[str], name: str, error: str) -> None:
    with pytest.raises(tokens.TokenError, match=error):
        tokens.issue(make_user("siem", "viewer"), name, days=days, scopes=scopes)
    assert not ApiToken.objects.exists()


def test_a_scoped_token_allows_only_its_scopes() -> None:
    read_only, _ = tokens.issue(make_user("siem", "viewer"), "pull", scopes=["read"])
    everything, _ = tokens.issue(make_user("ops", "analyst"), "all")
    assert tokens.allows(read_only, "read") and not tokens.allows(read_only, "export")
    assert tokens.allows(everything, "export")


def test_an_entra_users_tokens_stop_after_a_month_without_sign_in_and_revive_with_one(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ARC_API_TOKEN_SIGN_IN_DAYS = 30
    entra_user, local_user = make_user("ada", "admin"), make_user("local", "admin")
    identity = ExternalIdentity.objects.create(user=entra_user, tenant_id="t", object_id="o", last_sign_in=timezone.now())
    (_, entra_raw), (_, local_raw) = tokens.issue(entra_user, "pull"), tokens.issue(local_user, "pull")
    assert tokens.verify(entra_raw) and tokens.verify(local_raw)
    later(monkeypatch, days=31)
    assert tokens.verify(entra_raw) is None and tokens.verify(local_raw) is not None
    identity.last_sign_in = timezone.now()  # a sign-in, as web/oidc records it
    identity.save()
    assert tokens.verify(entra_raw) is not None

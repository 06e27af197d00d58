"""The management commands operators use: scope, scan, user, evaluate, catalog_docs."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django_celery_beat.models import PeriodicTask

from posture.models import Scan, Scope

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SUB = "11111111-1111-1111-1111-111111111111"


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_scope_add_validates_and_schedules_the_scope() -> None:
    assert "Scope corp added (1 subscription(s))" in run("scope", "add", "corp", "--tenant-id", TENANT, "--subscription", SUB.upper())
    scope = Scope.objects.get(name="corp")
    assert scope.subscriptions == [SUB]
    task = PeriodicTask.objects.get(name="arc-posture: scan scope corp")
    assert task.enabled and task.crontab.hour == "*/6"
    run("scope", "disable", "corp")
    assert not PeriodicTask.objects.get(name="arc-posture: scan scope corp").enabled
    assert {"arc-posture: watchdog", "arc-posture: heartbeat default", "arc-posture: heartbeat collect"} <= set(
        PeriodicTask.objects.values_list("name", flat=True)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args,message",
    [
        (["--tenant-id", "not a tenant"], "tenant_id"),
        (["--tenant-id", TENANT, "--subscription", "abc"], "GUID"),
        (["--tenant-id", TENANT, "--schedule", "every hour"], "cron"),
        (["--tenant-id", TENANT, "--cloud", "Custom"], "cloud: Choose an Azure cloud or one the operator defined"),
        (["--tenant-id", TENANT, "--credential", "corp"], r"credential: .*\(ARC_CREDENTIALS: none\)"),
    ],
)
def test_scope_add_refuses_bad_input_with_a_reason(args, message) -> None:
    with pytest.raises(CommandError, match=message):
        run("scope", "add", "corp", *args)
    assert not Scope.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_scan_wait_reports_progress_and_exits_non_zero_when_the_scan_fails(make_emulator, emulator_scope, monkeypatch, capsys) -> None:
    emulator = make_emulator(clusters=40)
    emulator_scope(emulator, name="corp")
    call_command("scan", "--scope", "corp", "--wait")
    assert "corp: succeeded, 40 clusters" in capsys.readouterr().out
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong")
    with pytest.raises(SystemExit) as exited:
        call_command("scan", "--scope", "corp", "--wait")
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "failed" in captured.out and "AADSTS7000215" in captured.err
    assert Scan.objects.filter(state=Scan.State.FAILED).count() == 1


@pytest.mark.django_db
def test_user_command_creates_a_user_with_a_role_and_a_usable_password() -> None:
    out = run("user", "alice", "--role", "analyst")
    password = out.strip().splitlines()[-1].split(": ", 1)[1]
    user = get_user_model().objects.get(username="alice")
    assert user.check_password(password) and user.has_perm("posture.run_scan") and not user.has_perm("posture.manage_scopes")
    run("user", "alice", "--role", "viewer")
    user = get_user_model().objects.get(username="alice")
    assert not user.has_perm("posture.run_scan") and user.has_perm("posture.view_posture")


@pytest.mark.django_db
def test_createsuperuser_works_and_the_superuser_sees_everything(client, monkeypatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a long enough passphrase 42")
    call_command("createsuperuser", "--noinput", "--username", "root", "--email", "root@example.test", stdout=io.StringIO())
    # django-axes judges every sign-in by its request (and client address).
    assert client.login(request=RequestFactory().post("/login/"), username="root", password="a long enough passphrase 42")
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_catalog_docs_check_passes_when_docs_are_current() -> None:
    run("catalog_docs", "--check")


@pytest.mark.django_db
def test_a_scope_whose_cloud_is_not_defined_cannot_be_enabled_until_an_admin_picks_one() -> None:
    Scope.objects.create(name="legacy", tenant_id=TENANT, cloud="Custom", enabled=False)  # as the migration leaves it
    with pytest.raises(CommandError, match="cloud: Choose an Azure cloud or one the operator defined"):
        run("scope", "enable", "legacy")
    assert not Scope.objects.get().enabled

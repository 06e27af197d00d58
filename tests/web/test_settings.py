"""Settings come from the environment, fail loudly on bad values, and are safe in production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from web.env import database_from_url, env_bool, env_int, env_list, env_secret

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "web.settings.production",
    "SECRET_KEY": "k" * 10 + "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8",
    "DATABASE_URL": "postgres://arc:secret@db.internal:5432/arcposture",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "posture.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://posture.example.com",
}


def run_manage(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "DJANGO_", "REDIS_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "ARC_VAR_DIR": str(tmp_path), **env},
    )


def test_production_settings_pass_the_deployment_checklist(tmp_path) -> None:
    result = run_manage(["check", "--deploy", "--fail-level", "WARNING"], PRODUCTION_ENV, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


@pytest.mark.parametrize("missing", ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS"])
def test_production_settings_refuse_to_start_without_required_variables(tmp_path, missing) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = run_manage(["check"], env, tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


def test_secrets_can_come_from_files(tmp_path, monkeypatch) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("ARC_TEST_SECRET_FILE", str(secret))
    assert env_secret("ARC_TEST_SECRET") == "from-a-file"
    monkeypatch.setenv("ARC_TEST_SECRET_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="ARC_TEST_SECRET_FILE"):
        env_secret("ARC_TEST_SECRET")


def test_typed_helpers_reject_bad_values(monkeypatch) -> None:
    monkeypatch.setenv("ARC_TEST_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="true or false"):
        env_bool("ARC_TEST_FLAG", False)
    monkeypatch.setenv("ARC_TEST_FLAG", "YES")
    assert env_bool("ARC_TEST_FLAG", False) is True
    monkeypatch.setenv("ARC_TEST_NUMBER", "12x")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("ARC_TEST_NUMBER", 1)
    monkeypatch.setenv("ARC_TEST_NUMBER", "5000")
    with pytest.raises(ImproperlyConfigured, match="between"):
        env_int("ARC_TEST_NUMBER", 1, minimum=1, maximum=1000)
    monkeypatch.setenv("ARC_TEST_LIST", " a.example, ,b.example ")
    assert env_list("ARC_TEST_LIST") == ["a.example", "b.example"]


def test_database_urls_are_parsed() -> None:
    pg = database_from_url("postgres://app:p%40ss@db:5433/posture?sslmode=require")
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "django.db.backends.postgresql",
        "posture",
        "app",
        "p@ss",
        "db",
        "5433",
    )
    assert pg["OPTIONS"] == {"sslmode": "require"}
    assert database_from_url("sqlite:////var/lib/arc.db")["NAME"] == "/var/lib/arc.db"
    with pytest.raises(ImproperlyConfigured, match="scheme"):
        database_from_url("mysql://x/y")
    with pytest.raises(ImproperlyConfigured, match="name a database"):
        database_from_url("postgres://host/")


def test_embedded_default_needs_no_configuration(tmp_path) -> None:
    result = run_manage(
        [
            "shell",
            "--no-imports",
            "-c",
            "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.DEBUG)",
        ],
        {},
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "True", "False"]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # not readable by others


def test_every_setting_read_from_the_environment_is_documented() -> None:
    import re

    sources = "".join(p.read_text() for p in (ROOT / "web" / "settings").glob("*.py"))
    names = set(re.findall(r'env_(?:str|bool|int|float|list|secret)\("([A-Z0-9_]+)"', sources))
    readme = (ROOT / "README.md").read_text()
    assert len(names) > 30
    assert sorted(n for n in names if f"`{n}`" not in readme and f"`{n} /" not in readme and f" {n}`" not in readme) == []


def test_cached_fragments_of_one_release_are_not_served_by_the_next(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from web.settings import base

    (tmp_path / "templates").mkdir()
    (tmp_path / "web").mkdir()
    page = tmp_path / "templates" / "page.html"
    page.write_text("<p>{{ old }}</p>")
    monkeypatch.setattr(base, "BASE_DIR", tmp_path)
    before = base._render_version()
    assert base._render_version() == before  # stable while nothing changes
    page.write_text("<p>{{ new }}</p>")
    assert base._render_version() != before

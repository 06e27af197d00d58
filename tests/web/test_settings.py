"""Settings come from the environment, fail loudly on bad values, and are safe in production."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from posture.env import database_from_url, env_bool, env_int, env_list, env_secret

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "web.settings.production",
    "SECRET_KEY": "k" * 10 + "3f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8",
    "DATABASE_URL": "postgres://arc:secret@db.internal:5432/arcposture",
    "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
    "ALLOWED_HOSTS": "posture.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://posture.example.com",
    "EVIDENCE_SIGNING_KEY": "q83vEjRWeJq83vEjRWeJq83vEjRWeJq83vEjRWeJq80=",
    "SITE_URL": "https://posture.example.com/arc",
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


@pytest.mark.parametrize(
    "missing", ["SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "ALLOWED_HOSTS", "EVIDENCE_SIGNING_KEY", "SITE_URL"]
)
def test_production_settings_refuse_to_start_without_required_variables(tmp_path, missing) -> None:
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != missing}
    result = run_manage(["check"], env, tmp_path)
    assert result.returncode != 0
    assert missing in result.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", "change-me-change-me-change-me-change-me-change-me-change-me-0123456789"),
        ("ALLOWED_HOSTS", "*"),
        ("HTTPS", "false"),
        ("EVIDENCE_SIGNING_KEY", ""),
        ("SITE_URL", "http://posture.example.com"),
        ("SITE_URL", "https://127.0.0.1:8000"),
        ("SITE_URL", "https://127.10.0.5/arc"),
        ("SITE_URL", "https://localhost"),
        ("SITE_URL", "https://arc.localhost:8443"),
        ("SITE_URL", "https://[::1]:8000"),
        ("SITE_URL", "https://0.0.0.0"),
    ],
)
def test_production_refuses_unsafe_values_unless_explicitly_overridden(tmp_path, name, value) -> None:
    refused = run_manage(["check"], {**PRODUCTION_ENV, name: value}, tmp_path)
    assert refused.returncode != 0
    message = refused.stderr.strip().splitlines()[-1]
    assert f"ImproperlyConfigured: {name}:" in message and "ARC_ALLOW_INSECURE=true" in message
    allowed = run_manage(["check"], {**PRODUCTION_ENV, name: value, "ARC_ALLOW_INSECURE": "true"}, tmp_path)
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize(
    ("value", "reason"),
    [("https://127.0.0.1:8000", "is a loopback address"), ("http://posture.example.com", "is not https")],
)
def test_production_says_why_it_refuses_a_site_url_alerts_cannot_link_to(tmp_path, value, reason) -> None:
    refused = run_manage(["check"], {**PRODUCTION_ENV, "SITE_URL": value}, tmp_path)
    assert f"SITE_URL: {value} {reason}" in refused.stderr


def test_the_placeholder_secret_key_of_env_example_is_the_one_production_refuses() -> None:
    example = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    assert "change-me" in example["SECRET_KEY"]


@pytest.mark.parametrize("value", ["not base64!", "c2hvcnQ="])
def test_a_bad_evidence_signing_key_stops_the_process_without_showing_it(tmp_path, value) -> None:
    result = run_manage(["check"], {**PRODUCTION_ENV, "EVIDENCE_SIGNING_KEY": value}, tmp_path)
    assert result.returncode != 0
    assert "EVIDENCE_SIGNING_KEY must be base64 of 32 random bytes" in result.stderr and value not in result.stderr


def print_settings(names: list[str], env: dict[str, str], tmp_path: Path) -> list[str]:
    code = "from django.conf import settings as s; print(" + ", ".join(f"s.{n}" for n in names) + ")"
    result = run_manage(["shell", "--no-imports", "-c", code], env, tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_four_eyes_approval_is_on_in_production_unless_turned_off_explicitly(tmp_path) -> None:
    assert print_settings(["ARC_EXCEPTION_FOUR_EYES"], PRODUCTION_ENV, tmp_path) == ["True"]
    off = {**PRODUCTION_ENV, "ARC_EXCEPTION_FOUR_EYES": "false"}
    assert print_settings(["ARC_EXCEPTION_FOUR_EYES"], off, tmp_path) == ["False"]


def test_trusted_proxies_must_be_addresses(tmp_path) -> None:
    result = run_manage(["check"], {"ARC_TRUSTED_PROXIES": "*"}, tmp_path)
    assert result.returncode != 0 and "ARC_TRUSTED_PROXIES" in result.stderr
    assert print_settings(["ARC_TRUSTED_PROXIES", "AXES_IPWARE_PROXY_COUNT"], {"ARC_PROXY_COUNT": "2"}, tmp_path) == [
        "['127.0.0.1',",
        "'::1']",
        "1",
    ]


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
    assert (pg["ENGINE"], pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], str(pg["PORT"])) == (
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
    with pytest.raises(ImproperlyConfigured, match="file path"):
        database_from_url("sqlite:///")


def test_a_unix_socket_host_in_the_database_url_is_decoded() -> None:
    pg = database_from_url("postgres://app@%2Fvar%2Frun%2Fpostgresql/posture")
    assert (pg["HOST"], pg["NAME"], pg["USER"]) == ("/var/run/postgresql", "posture", "app")
    assert pg["CONN_HEALTH_CHECKS"] is True


def test_sqlite_urls_keep_the_options_the_embedded_default_needs() -> None:
    lite = database_from_url("sqlite:///var/arc.db")
    assert (lite["ENGINE"], lite["NAME"]) == ("django.db.backends.sqlite3", "var/arc.db")
    assert lite["OPTIONS"]["transaction_mode"] == "IMMEDIATE" and "journal_mode=WAL" in lite["OPTIONS"]["init_command"]


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
    assert (tmp_path / "arc-posture.sqlite3").stat().st_mode & 0o077 == 0  # password hashes live there


def test_every_setting_read_from_the_environment_is_documented() -> None:
    sources = "".join(p.read_text() for p in (ROOT / "web" / "settings").glob("*.py"))
    names = set(re.findall(r'env_(?:str|bool|int|float|list|secret)\("([A-Z0-9_]+)"', sources))
    readme = (ROOT / "README.md").read_text()
    assert len(names) > 30
    assert sorted(n for n in names if f"`{n}`" not in readme and f"`{n} /" not in readme and f" {n}`" not in readme) == []


ENV_READ = re.compile(r'(?:env_(?:str|bool|int|float|list|secret)\(|os\.environ(?:\.get|\.setdefault)?[(\[]|os\.getenv\()\s*"([A-Z0-9_]+)"')


def test_every_variable_the_code_reads_is_listed_in_env_example() -> None:
    sources = [*(ROOT / "web").rglob("*.py"), *(ROOT / "posture").rglob("*.py"), ROOT / "gunicorn.conf.py"]
    read = {name for path in sources for name in ENV_READ.findall(path.read_text())}
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert {"SECRET_KEY", "ARC_TRUSTED_PROXIES", "LOG_FORMAT"} <= read  # the scan itself works
    missing = sorted(read - listed)
    assert not missing, f"read by the code but missing from .env.example: {', '.join(missing)}"


def test_json_log_format_writes_one_object_per_line(tmp_path) -> None:
    code = "import logging; logging.getLogger('posture.scan').warning('scan %s started', 7)"
    result = run_manage(["shell", "--no-imports", "-c", code], {"LOG_FORMAT": "json"}, tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stderr.strip().splitlines()[-1])
    assert (record["level"], record["logger"], record["message"]) == ("WARNING", "posture.scan", "scan 7 started")
    assert run_manage(["check"], {"LOG_FORMAT": "xml"}, tmp_path).returncode != 0


def test_celery_workers_log_through_django_logging(start_worker) -> None:
    worker = start_worker(queues=("default",), extra_env={"LOG_FORMAT": "json"}, name="jsonlog")
    ready = [line for line in worker.log().splitlines() if "ready." in line]
    record = json.loads(ready[0])  # Celery's own format ("[… INFO/MainProcess] …") is not JSON
    assert (record["level"], record["logger"]) == ("INFO", "celery.apps.worker")


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]

    def ignored(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        return any(fnmatch.fnmatch(prefix, pattern.rstrip("/")) for prefix in prefixes for pattern in patterns)

    assert ignored(".env") and ignored(".env.local") and ignored("var/secret_key") and ignored("var/arc-posture.sqlite3")
    assert not ignored("web/settings/production.py") and not ignored("requirements/base.txt") and not ignored("gunicorn.conf.py")


def test_the_image_checks_its_health_and_trusts_forwarded_headers_only_from_configured_proxies() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", dockerfile, re.M)
    compose = (ROOT / "docker-compose.yml").read_text()
    for text in (dockerfile, compose):
        assert "--forwarded-allow-ips" not in text  # gunicorn.conf.py reads ARC_TRUSTED_PROXIES
        assert "--workers" not in text and "--threads" not in text  # gunicorn.conf.py (WEB_CONCURRENCY) decides
    assert "COPY manage.py gunicorn.conf.py" in dockerfile


def serve(env: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "CELERY_", "DJANGO_", "REDIS_", "ARC_"))}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "web.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,  # where gunicorn finds gunicorn.conf.py, as in the image
        env={**clean, "DJANGO_SETTINGS_MODULE": "web.settings.base", "ARC_VAR_DIR": str(tmp_path), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)  # noqa: S310 - our own server
            return server, port
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                raise AssertionError("gunicorn did not start") from None
            time.sleep(0.2)


@pytest.mark.parametrize(("trusted", "served_as_https"), [("127.0.0.1", True), ("192.0.2.10", False)])
def test_gunicorn_believes_x_forwarded_proto_only_from_trusted_proxies(tmp_path, trusted, served_as_https) -> None:
    import http.client

    server, port = serve({"HTTPS": "true", "ARC_TRUSTED_PROXIES": trusted}, tmp_path)
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/login/", headers={"Host": "localhost", "X-Forwarded-Proto": "https"})
        response = connection.getresponse()
        # Believed: the page itself. Not believed: the request is plain HTTP and is sent to https://.
        assert (response.status == 200) is served_as_https
        assert (response.getheader("Location") or "").startswith("https://") is not served_as_https
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_env_example_does_not_make_django_believe_forwarded_proto_from_anyone() -> None:
    example = dict(re.findall(r"^([A-Z0-9_]+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    assert example["TRUST_X_FORWARDED_PROTO"] == "false"
    assert example["ARC_TRUSTED_PROXIES"] == "172.30.80.1"  # the compose network's gateway
    assert "gateway: 172.30.80.1" in (ROOT / "docker-compose.yml").read_text()


def test_compose_publishes_on_loopback_and_keeps_the_mail_catcher_for_trials() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    published = re.findall(r'^\s+- "([^"]+:\d+:\d+)"$', compose, re.M)
    assert published and all(p.startswith("${ARC_PUBLISH_ADDRESS:-127.0.0.1}:") for p in published)
    mailpit = compose.split("\n  mailpit:\n", 1)[1].split("\n\n", 1)[0]
    assert 'profiles: ["trial"]' in mailpit


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

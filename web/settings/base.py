"""Settings for every deployment, read from the environment.

With nothing configured this is the embedded default: a SQLite file under var/, Celery tasks run
in-process, a local-memory cache. Production adds only stricter requirements
(web/settings/production.py); behaviour lives here. Every variable is listed in README.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import secrets
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from posture.env import (
    base64_key,
    database_from_url,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_str,
    env_url,
    export_storage,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("ARC_VAR_DIR", str(BASE_DIR / "var")))


def _embedded_secret_key() -> str:
    # Only for the embedded default: a random key kept in var/ so sessions survive a restart.
    # Production settings refuse to start without SECRET_KEY.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY") or _embedded_secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_celery_beat",
    "axes",
    "mozilla_django_oidc",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "posture",
    "web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "web.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a lock-out during sign-in into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "web.urls"
WSGI_APPLICATION = "web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "web.context.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
_database_url = env_secret("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'arc-posture.sqlite3'}"
DATABASES = {"default": database_from_url(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
if DATABASES["default"]["ENGINE"].endswith("sqlite3") and DATABASES["default"]["NAME"] != ":memory:":
    _sqlite_file = Path(str(DATABASES["default"]["NAME"]))
    _sqlite_file.parent.mkdir(parents=True, exist_ok=True)
    # Created private (password hashes live there); SQLite gives its -wal and -shm files the same mode.
    _sqlite_file.touch(mode=0o600, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Redis: caches (sessions, rendered pages) and the shared ARG quota pacer ---------------------
def _render_version() -> str:
    """Digest of the code and templates that rendered pages and cached selector values are made
    of, so a release never serves what the one before cached (those entries are keyed by data
    only and live up to a day)."""
    digest = hashlib.sha256()
    sources = [BASE_DIR / "templates", BASE_DIR / "web", BASE_DIR / "posture"]
    for path in sorted(p for source in sources for p in source.rglob("*") if p.suffix in (".html", ".py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


CELERY_BROKER_URL = env_secret("CELERY_BROKER_URL")
REDIS_URL = env_secret("REDIS_URL") or (CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis://", "rediss://")) else "")
if REDIS_URL:

    def _redis_cache(prefix: str) -> dict[str, Any]:
        return {"BACKEND": "web.redis_cache.ReusingRedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": prefix, "TIMEOUT": 300}

    # "default" (sessions) outlives releases; "pages" does not.
    CACHES = {"default": _redis_cache("arc-posture"), "pages": _redis_cache(f"arc-posture:{_render_version()}")}
    # Sessions read from Redis and written through to the database. Not with per-process
    # caches: a sign-out would stay unseen by the other processes.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "default"},
        "pages": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "pages"},
    }

# --- Celery (reliability options live in web/celery.py, beside the app) ------------------------
# Without a broker, tasks run in-process: the embedded default needs no server.
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 1800, minimum=10)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 2100, minimum=15)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must be larger than CELERY_TASK_SOFT_TIME_LIMIT")
# Redis re-delivers an unacknowledged message after the visibility timeout; it must exceed the
# longest task (the hard limit) or a running task would be handed to a second worker.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 2 * CELERY_TASK_TIME_LIMIT}

# --- Auth --------------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out sign-in before the password is checked.
    "axes.backends.AxesStandaloneBackend",
    # Django's ModelBackend, refusing passwords when LOCAL_LOGIN=false except the break-glass user's.
    "web.oidc.backends.LocalPasswordBackend",
    # Entra ID (OpenID Connect); answers only the OIDC callback's authenticate() call.
    "web.oidc.backends.EntraBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "overview"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)

# The reverse proxies whose X-Forwarded-For (here) and X-Forwarded-Proto (gunicorn.conf.py) are
# believed, as exact addresses the way gunicorn takes them; a request from anywhere else is its own client.
ARC_TRUSTED_PROXIES = env_list("ARC_TRUSTED_PROXIES", ["127.0.0.1", "::1"])
for _proxy in ARC_TRUSTED_PROXIES:
    try:
        ipaddress.ip_address(_proxy)
    except ValueError:
        raise ImproperlyConfigured(f"ARC_TRUSTED_PROXIES must list IP addresses of proxies, not {_proxy!r}") from None
# How many trusted proxies each request passes (each appends the address it was reached from).
ARC_PROXY_COUNT = env_int("ARC_PROXY_COUNT", 1, minimum=1, maximum=10)

# Sign-in throttling (django-axes). Counters live in the database, so every process (gunicorn
# workers, embedded or not) shares them. A lock-out holds one user name from one client address:
# guessing at many names locks out only the guesser, and nobody can lock a user out from elsewhere.
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = dt.timedelta(seconds=LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "web.throttle.client_address"
# The nearest proxy is REMOTE_ADDR; the others wrote the entries right of the client's.
AXES_IPWARE_PROXY_COUNT = ARC_PROXY_COUNT - 1
AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR",)
AXES_LOCKOUT_CALLABLE = "web.views.accounts.locked_out"
# Entra ID callbacks are no password guesses: counting their refusals under "no user name" would
# let a few role-less users behind one address lock everyone there out, and would store codes.
AXES_WHITELIST_CALLABLE = "web.oidc.backends.not_a_password_attempt"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=300)

# --- Security headers ------------------------------------------------------------------------
# HTTPS=true when the app is reached over TLS (directly or behind a proxy that sets
# X-Forwarded-Proto): secure cookies, redirect to https and HSTS follow from it.
HTTPS = env_bool("HTTPS", False)
# Not needed under gunicorn, which believes X-Forwarded-Proto from ARC_TRUSTED_PROXIES only. Django
# believes it from anyone: set it only when nothing but the proxy can reach the app.
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # container health checks speak plain HTTP
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", HTTPS)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)

# --- Static files ------------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing root
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served by WhiteNoise. Without collectstatic (the embedded default) it reads the source folders.
WHITENOISE_USE_FINDERS = not env_bool("STATIC_COLLECTED", False)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Built exports (posture/exports/jobs.py): var/exports, or Azure Blob Storage (posture/env.py).
    "exports": export_storage(VAR_DIR),
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env_bool("STATIC_COLLECTED", False)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Email -------------------------------------------------------------------------------------
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", EMAIL_PORT == 587)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", EMAIL_PORT == 465)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be true")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "arc-posture@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Alerts (posture/alerts/) ------------------------------------------------------------------
# The address users reach the site at: every link in an alert is built on it (a path prefix is kept).
SITE_URL = env_url("SITE_URL", "http://127.0.0.1:8000")
# A message the mail server does not take is tried again with exponential backoff (base doubled
# each attempt, capped, jittered) for this many hours after it was planned, then marked failed.
ARC_ALERT_RETRY_HOURS = env_int("ARC_ALERT_RETRY_HOURS", 24, minimum=24)
ARC_ALERT_RETRY_BASE_SECONDS = env_float("ARC_ALERT_RETRY_BASE_SECONDS", 60.0, minimum=1.0)
ARC_ALERT_RETRY_CAP_SECONDS = env_float("ARC_ALERT_RETRY_CAP_SECONDS", 3600.0, minimum=1.0)
# Alert messages one recipient gets per UTC day; the rest are held and summarised in the next
# message (posture/alerts/cap.py). Digests and the cap's own summaries neither count nor are held.
ARC_ALERT_DAILY_CAP = env_int("ARC_ALERT_DAILY_CAP", 50, minimum=1)

# --- Azure collection --------------------------------------------------------------------------
ARC_SCAN_BATCH_SUBSCRIPTIONS = env_int("ARC_SCAN_BATCH_SUBSCRIPTIONS", 300, minimum=1, maximum=1000)
# Each batch query runs as this many parallel streams over slices of the batch's subscriptions.
ARC_QUERY_PARTS = env_int("ARC_QUERY_PARTS", 2, minimum=1, maximum=16)
ARC_HTTP_CONNECT_TIMEOUT = env_float("ARC_HTTP_CONNECT_TIMEOUT", 10.0, minimum=0.1)
ARC_HTTP_READ_TIMEOUT = env_float("ARC_HTTP_READ_TIMEOUT", 60.0, minimum=0.1)
ARC_AZURE_MAX_ATTEMPTS = env_int("ARC_AZURE_MAX_ATTEMPTS", 6, minimum=1)
ARC_AZURE_BACKOFF_BASE_SECONDS = env_float("ARC_AZURE_BACKOFF_BASE_SECONDS", 1.0)
ARC_AZURE_BACKOFF_CAP_SECONDS = env_float("ARC_AZURE_BACKOFF_CAP_SECONDS", 60.0)
# How long one request may keep being throttled (429) before its batch attempt gives up.
ARC_THROTTLE_MAX_WAIT_SECONDS = env_float("ARC_THROTTLE_MAX_WAIT_SECONDS", 600.0)
ARC_ARM_CONCURRENCY = env_int("ARC_ARM_CONCURRENCY", 8, minimum=1, maximum=64)
ARC_ARM_READS_RESERVE = env_int("ARC_ARM_READS_RESERVE", 10, minimum=0)
# A failed batch is tried again this many times in all (transient errors only).
ARC_BATCH_MAX_ATTEMPTS = env_int("ARC_BATCH_MAX_ATTEMPTS", 3, minimum=1)
# A batch or scan whose heartbeat is older than this is presumed orphaned by a dead worker.
# Running batches beat every ARC_PROGRESS_INTERVAL_SECONDS from a thread of their own, and beat
# runs the watchdog every ARC_WATCHDOG_INTERVAL_SECONDS: a dead worker's batch is handed out
# again within stale + interval (60 s by default).
ARC_WATCHDOG_STALE_SECONDS = env_int("ARC_WATCHDOG_STALE_SECONDS", 45, minimum=5)
ARC_WATCHDOG_INTERVAL_SECONDS = env_int("ARC_WATCHDOG_INTERVAL_SECONDS", 15, minimum=5)
ARC_PROGRESS_INTERVAL_SECONDS = env_float("ARC_PROGRESS_INTERVAL_SECONDS", 2.0)
if ARC_WATCHDOG_STALE_SECONDS < 5 * ARC_PROGRESS_INTERVAL_SECONDS:
    raise ImproperlyConfigured("ARC_WATCHDOG_STALE_SECONDS must be at least five heartbeats (ARC_PROGRESS_INTERVAL_SECONDS)")
# Without PostgreSQL (whose evaluation lock dies with its holder's session) the lock is a lease
# renewed between chunks, free once this old.
ARC_EVALUATION_LEASE_SECONDS = env_int("ARC_EVALUATION_LEASE_SECONDS", 60, minimum=10)
# A cluster silent for longer than this is stale: its passes turn unknown.
ARC_STALE_AFTER_HOURS = env_int("ARC_STALE_AFTER_HOURS", 24, minimum=1)
ARC_ATTESTATION_MAX_DAYS = env_int("ARC_ATTESTATION_MAX_DAYS", 365, minimum=1)
ARC_EXCEPTION_MAX_DAYS = env_int("ARC_EXCEPTION_MAX_DAYS", 180, minimum=1)
ARC_EXPIRING_SOON_DAYS = env_int("ARC_EXPIRING_SOON_DAYS", 14, minimum=1)
# Separation of duties: an admin may not approve an exception they requested. On by default in
# production; the exception pages say when it is off.
ARC_EXCEPTION_FOUR_EYES = env_bool("ARC_EXCEPTION_FOUR_EYES", False)
# Raw Resource Graph responses are kept for this many finished scans per scope.
ARC_EVIDENCE_KEEP_SCANS = env_int("ARC_EVIDENCE_KEEP_SCANS", 10, minimum=1)
# Change-feed entries (GET /api/v1/changes) are kept this long; a client's cursor older than
# that gets 410 Gone and starts again (docs/change-feed.md).
ARC_FEED_RETENTION_DAYS = env_int("ARC_FEED_RETENTION_DAYS", 90, minimum=1)

# --- Evidence exports ------------------------------------------------------------------------
# The Ed25519 key that signs evidence bundles: base64 of its 32 raw bytes. Without one, the
# embedded default keeps a key of its own in var/ (posture/exports/signing.py); production refuses.
EVIDENCE_SIGNING_KEY = base64_key("EVIDENCE_SIGNING_KEY", env_secret("EVIDENCE_SIGNING_KEY"), size=32)
EVIDENCE_SIGNING_KEY_PATH = VAR_DIR / "evidence_signing_key"
# Built export files (STORAGES["exports"]) are deleted with their audit rows this many days on.
ARC_EXPORT_RETENTION_DAYS = env_int("ARC_EXPORT_RETENTION_DAYS", 7, minimum=1)
# Findings exports (CSV, JSON Lines) of this many rows or more are written by two processes at
# once, from one database snapshot (posture/exports/parallel.py); PostgreSQL only.
ARC_EXPORT_TWO_PROCESSES = env_bool("ARC_EXPORT_TWO_PROCESSES", True)
ARC_EXPORT_PARALLEL_MIN_ROWS = env_int("ARC_EXPORT_PARALLEL_MIN_ROWS", 100_000, minimum=2)

# --- Azure collection: the operator's clouds and credential names (web/azure_config.py) ---------
# Admins choose among these by name; only the environment says where secrets and tokens go.
from web.azure_config import load_clouds, load_credential_names  # noqa: E402

ARC_CLOUDS = load_clouds()
ARC_CREDENTIALS = load_credential_names()
# --- end of the operator's clouds and credential names ------------------------------------------

# --- Entra ID sign-in, the API, /metrics: each in its own module -----------------------------
from web.settings.api import *  # noqa: E402,F403
from web.settings.identity import *  # noqa: E402,F403
from web.settings.metrics import *  # noqa: E402,F403

# --- i18n, logging ---------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
# plain: one readable line per record; json: one JSON object per line, for log collectors.
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
_LOG_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": _LOG_FIELDS},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": _LOG_FIELDS,
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # At INFO azure-core logs every request and response header.
        "azure": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
        # Failures and lock-outs (user names and addresses masked) at WARNING; every attempt at INFO.
        "axes": {"level": "WARNING"},
    },
}

"""Test settings: the same as base, with fast password hashing.

DATABASE_URL and CELERY_BROKER_URL decide whether the suite runs on PostgreSQL and Redis
(.ci/run exports them) or on the embedded default (SQLite, tasks in-process).
"""

from __future__ import annotations

from web.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests drive tasks in-process unless a test starts a real worker itself.
CELERY_TASK_ALWAYS_EAGER = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

"""The demo's alert steps, run by scripts/demo.py in the demo's environment (Django is set up here).

  python scripts/demo_alerts.py rule ADDRESS   the sample rule (created once): controls of medium
                                               severity or more that regress, mailed to ADDRESS
  python scripts/demo_alerts.py report         where the alerts of the scope's last scan went

This script is a development tool, like scripts/demo.py.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings.base")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from posture.alerts.messages import build_message  # noqa: E402
from posture.alerts.rules import rule_create  # noqa: E402
from posture.models import AlertRule, Notification, Scan  # noqa: E402

RULE_NAME = "Controls of medium severity or more that regress"
SCOPE = "demo"


def sample_rule(address: str) -> str:
    rule = AlertRule.objects.filter(name=RULE_NAME).first()
    if rule is None:
        owner = get_user_model().objects.filter(username="demo").first()
        rule = rule_create(
            user=owner,
            name=RULE_NAME,
            kind=AlertRule.Kind.CONTROL_REGRESSION,
            params={"min_severity": "medium"},
            addresses=[address],
        )
    return f'Sample alert rule "{rule.name}" mails {", ".join(rule.addresses)}.'


def report() -> str:
    scan = Scan.objects.filter(scope__name=SCOPE).order_by("-created_at").first()
    notifications = list(Notification.objects.filter(scan=scan).order_by("recipient")) if scan else []
    if not notifications:
        return "No alert: the last scan found no regression the sample rule covers."
    lines = []
    for notification in notifications:
        subject = build_message(notification).subject
        lines.append(f"Alert to {notification.recipient}: {subject}")
        lines.append(f"  {where(notification)}")
    return "\n".join(lines)


def where(notification: Notification) -> str:
    if notification.state != Notification.State.SENT:
        return f"Not delivered: {notification.last_error}"
    if not settings.EMAIL_HOST:
        return "EMAIL_HOST is not set, so it was written to the log below instead of being mailed."
    return (
        f"The mail server at {settings.EMAIL_HOST}:{settings.EMAIL_PORT} took it ({notification.smtp_reply}). "
        "Read it in your mail catcher (mailpit: http://localhost:8025)."
    )


if __name__ == "__main__":
    command, *args = sys.argv[1:] or ["report"]
    print(sample_rule(*args) if command == "rule" else report())

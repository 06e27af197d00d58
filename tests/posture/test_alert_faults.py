"""Alerts sent by real Celery workers through Redis on PostgreSQL, to aiosmtpd on loopback, while
the SMTP server is down, a worker is SIGKILLed after the server took the message, or Redis
restarts with notifications queued: every message arrives, and exactly once."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from posture.alerts.outbox import requeue_orphaned, stale_after
from posture.alerts.planning import plan_scan_alerts
from posture.models import Notification
from posture.task_queue import SEND_NOTIFICATION, enqueue
from tests.posture.alerts_fleet import alert_fleet, regression_rule
from tests.posture.faults import publishing_to, wait_for
from tests.posture.mail_server import MailServer

pytestmark = [pytest.mark.services, pytest.mark.slow]

State = Notification.State
ADDRESSES = ["soc@example.test", "noc@example.test", "cert@example.test"]


def worker_env(mail_server: MailServer, **extra: str) -> dict[str, str]:
    return {
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(mail_server.port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_USE_SSL": "false",
        "EMAIL_TIMEOUT": "5",
        "DEFAULT_FROM_EMAIL": "arc-posture@example.test",
        "SITE_URL": "https://arc.example.test",
        "ARC_ALERT_RETRY_BASE_SECONDS": "1",
        "ARC_ALERT_RETRY_CAP_SECONDS": "2",
        **extra,
    }


def plan(addresses: list[str]) -> list[Notification]:
    """One regression for each address, queued to the broker as planning commits."""
    fleet = alert_fleet()
    fleet.change(0, "ARC-NP-01", "pass", "fail")
    regression_rule(addresses=addresses)
    plan_scan_alerts(fleet.scan)
    return list(Notification.objects.all())


def states() -> dict[str, str]:
    return dict(Notification.objects.values_list("recipient", "state"))


def later() -> dt.datetime:
    return timezone.now() + stale_after() + dt.timedelta(seconds=1)


def test_smtp_down_then_up_after_the_retries_began_delivers_each_message_once(start_worker, celery_live, mail_server) -> None:
    mail_server.stop()
    worker = start_worker(queues=("default",), extra_env=worker_env(mail_server))
    plan(ADDRESSES)
    wait_for(lambda: Notification.objects.filter(attempts__gte=2, state=State.PENDING).count() == 3, 60, worker.log)
    mail_server.start()
    wait_for(lambda: set(states().values()) == {State.SENT}, 60, worker.log)
    time.sleep(3)  # any retry still queued would run by now
    assert sorted(r.rcpt_tos[0] for r in mail_server.received) == sorted(ADDRESSES)
    assert {r.message["Message-ID"] for r in mail_server.received} == set(Notification.objects.values_list("message_id", flat=True))
    assert all(n.last_error == "" and n.attempts >= 3 for n in Notification.objects.all())


def test_a_worker_killed_after_the_server_took_the_message_never_sends_it_again(start_worker, celery_live, mail_server) -> None:
    env = worker_env(mail_server)
    doomed = start_worker(queues=("default",), extra_env=env, name="doomed")
    mail_server.catcher.on_data = lambda envelope: doomed.kill()  # the message is in; the 250 never reaches the worker
    [notification] = plan(ADDRESSES[:1])
    wait_for(lambda: len(mail_server.received) == 1, 60, doomed.log)
    assert states() == {"soc@example.test": State.HANDING_OVER}
    mail_server.catcher.on_data = None
    survivor = start_worker(queues=("default",), extra_env=env, name="survivor")
    enqueue(SEND_NOTIFICATION, notification_id=str(notification.pk))  # the message Redis hands out again
    assert requeue_orphaned(later()) == {"notifications_requeued": 0, "notifications_unconfirmed": 1}
    wait_for(lambda: survivor.log().count("succeeded") >= 1, 60, survivor.log)
    notification.refresh_from_db()
    assert notification.state == State.UNCONFIRMED and "it may have been delivered" in notification.last_error
    assert len(mail_server.received) == 1


def test_notifications_queued_when_redis_restarts_are_all_delivered(start_worker, celery_live, mail_server, private_redis) -> None:
    with publishing_to(private_redis.url):
        plan(ADDRESSES)  # queued in Redis; no worker takes them yet
        private_redis.restart(down_seconds=1)  # without persistence: the queued messages are gone
        env = worker_env(mail_server, CELERY_BROKER_URL=private_redis.url, REDIS_URL=private_redis.url)
        worker = start_worker(queues=("default",), extra_env=env)
        time.sleep(2)
        assert set(states().values()) == {State.PENDING} and mail_server.received == []
        assert requeue_orphaned(later())["notifications_requeued"] == 3  # the watchdog's tick
        wait_for(lambda: set(states().values()) == {State.SENT}, 60, worker.log)
    assert sorted(r.rcpt_tos[0] for r in mail_server.received) == sorted(ADDRESSES)

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posture.alerts.delivery import SmtpError, send_test_message
from posture.alerts.rules import address_problem


class Command(BaseCommand):
    help = "Send a test message through the SMTP settings (EMAIL_HOST, EMAIL_PORT, ...) and print the mail server's answer."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--to", required=True, help="The address to send the test message to")

    def handle(self, *args: Any, **options: Any) -> None:
        if problem := address_problem(options["to"]):
            raise CommandError(problem)
        try:
            reply = send_test_message(options["to"])
        except SmtpError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"The mail server took the message: {reply}")

from __future__ import annotations

import secrets
import sys
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from posture.roles import ROLE_PERMISSIONS, assign_role


class Command(BaseCommand):
    help = "Create or update a user with a role (viewer, analyst, admin)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=list(ROLE_PERMISSIONS))
        parser.add_argument("--email", default="")
        how = parser.add_mutually_exclusive_group()
        how.add_argument("--password-stdin", action="store_true", help="Read the password from standard input")
        how.add_argument("--random-password", action="store_true", help="Set and print a random password")

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = get_user_model().objects.get_or_create(username=options["username"])
        if options["email"]:
            user.email = options["email"]
        password = None
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        elif options["random_password"] or created:
            password = secrets.token_urlsafe(18)
        if password is not None:
            try:
                validate_password(password, user)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from None
            user.set_password(password)
        user.save()
        assign_role(user, options["role"])
        self.stdout.write(f"{'Created' if created else 'Updated'} {user.username} as {options['role']}.")
        if password is not None and not options["password_stdin"]:
            self.stdout.write(f"Password: {password}")

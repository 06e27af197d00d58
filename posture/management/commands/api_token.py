"""API tokens from the command line: create (the token is printed once), list, revoke."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from posture import tokens
from posture.models import ApiToken


class Command(BaseCommand):
    help = "Create, list or revoke API tokens. A new token is printed once; only its digest is stored."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a token for a user; prints it once")
        create.add_argument("--user", required=True, help="The user name the token acts as")
        create.add_argument("--name", required=True, help="What uses it, e.g. 'SIEM pull'")
        create.add_argument(
            "--days", type=int, default=None, help=f"Lifetime in days (default and most: ARC_API_TOKEN_MAX_DAYS, {tokens.max_days()})"
        )
        create.add_argument(
            "--scope", action="append", choices=list(tokens.SCOPES), default=[], help="Repeat for several; none: all the role allows"
        )
        listing = actions.add_parser("list", help="List tokens (prefix, user, name, scopes, expiry, last use, state)")
        listing.add_argument("--user", default="", help="Only this user's tokens")
        revoke = actions.add_parser("revoke", help="Revoke a token by its prefix (the part after arcp_)")
        revoke.add_argument("prefix")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        user = get_user_model().objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user is called {options['user']!r}.")
        try:
            token, raw = tokens.issue(user, options["name"], days=options["days"], scopes=options["scope"])
        except tokens.TokenError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Token {token.prefix} for {user.get_username()} until {token.expires_at:%Y-%m-%d %H:%M} UTC; shown only now:")
        self.stdout.write(raw)  # alone on stdout, so a script can capture it

    def _list(self, options: dict[str, Any]) -> None:
        rows = ApiToken.objects.select_related("user").order_by("user__username", "-created_at")
        if options["user"]:
            rows = rows.filter(user__username=options["user"])
        now = timezone.now()
        for token in rows:
            state = "revoked" if token.revoked_at else "expired" if token.expires_at <= now else "active"
            used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
            scopes = ",".join(token.scopes) or "all"
            expires = f"{token.expires_at:%Y-%m-%d}"
            self.stdout.write(
                f"{token.prefix}  {token.user.get_username()}  {state}  scopes={scopes}  expires={expires}  used={used}  {token.name}"
            )

    def _revoke(self, options: dict[str, Any]) -> None:
        prefix = options["prefix"].removeprefix(tokens.PREFIX).split("_", 1)[0]
        token = ApiToken.objects.filter(prefix=prefix).first()
        if token is None:
            raise CommandError(f"No token has the prefix {prefix!r}.")
        self.stdout.write(f"Revoked {token.prefix} ({token.name})." if tokens.revoke(token) else f"{token.prefix} was revoked already.")

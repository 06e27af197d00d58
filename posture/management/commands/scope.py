from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from posture.clouds import DEFAULT_CLOUD
from posture.models import Scope
from posture.scopes import scope_create, scope_save


class Command(BaseCommand):
    help = "Manage the Azure scopes Arc Posture scans (credentials come from the environment)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="Add a scope")
        add.add_argument("name")
        add.add_argument("--tenant-id", required=True)
        add.add_argument("--subscription", action="append", default=[], dest="subscriptions")
        add.add_argument("--management-group", action="append", default=[], dest="management_groups")
        add.add_argument("--cloud", default=DEFAULT_CLOUD, help="AzureCloud, AzureUSGovernment, AzureChinaCloud or a cloud in ARC_CLOUDS")
        add.add_argument("--credential", default="", help="A name in ARC_CREDENTIALS: use the AZURE_<NAME>_* variables")
        add.add_argument("--schedule", default="0 */6 * * *", help="Cron expression (UTC)")
        sub.add_parser("list", help="List scopes")
        for action in ("enable", "disable"):
            sub.add_parser(action, help=f"{action.title()} a scope's schedule").add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "list":
            for scope in Scope.objects.all():
                state = "enabled" if scope.enabled else "disabled"
                self.stdout.write(f"{scope.name}\t{scope.tenant_id}\t{scope.scope_label}\t{scope.schedule}\t{state}")
            return
        if action in ("enable", "disable"):
            scope = Scope.objects.filter(name=options["name"]).first()
            if scope is None:
                raise CommandError(f"No scope named {options['name']!r}.")
            scope.enabled = action == "enable"
            try:
                scope_save(scope)
            except ValidationError as exc:  # e.g. its cloud is no longer defined: an admin must pick one
                raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
            self.stdout.write(f"Scope {scope.name} {action}d.")
            return
        if Scope.objects.filter(name=options["name"]).exists():
            raise CommandError(f"A scope named {options['name']!r} already exists.")
        if options["subscriptions"] and options["management_groups"]:
            raise CommandError("Give subscriptions or management groups, not both.")
        try:
            scope = scope_create(
                name=options["name"],
                tenant_id=options["tenant_id"],
                cloud=options["cloud"],
                credential=options["credential"],
                subscriptions=options["subscriptions"],
                management_groups=options["management_groups"],
                schedule=options["schedule"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        self.stdout.write(self.style.SUCCESS(f"Scope {scope.name} added ({scope.scope_label})."))

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posture.models import Scope
from posture.scans.evaluation import evaluate_scope


class Command(BaseCommand):
    help = "Re-evaluate every control on the stored facts, without calling Azure."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scope", help="Scope name; default: every scope")

    def handle(self, *args: Any, **options: Any) -> None:
        scopes = Scope.objects.filter(name=options["scope"]) if options["scope"] else Scope.objects.all()
        if options["scope"] and not scopes:
            raise CommandError(f"No scope named {options['scope']!r}.")
        for scope in scopes:
            stats = evaluate_scope(scope.pk)
            self.stdout.write(
                f"{scope.name}: {stats.clusters:,} clusters, {stats.clusters_changed:,} changed, "
                f"{stats.results_written:,} results and {stats.change_events:,} change events written in {stats.seconds:.1f} s"
            )

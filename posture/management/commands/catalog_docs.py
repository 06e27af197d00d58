from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from posture.docs.catalog import render_controls, render_scoring

DOCS = {"controls.md": render_controls, "scoring.md": render_scoring}


class Command(BaseCommand):
    help = "Regenerate docs/controls.md and docs/scoring.md from the control catalog."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check", action="store_true", help="Exit 1 if a file is out of date instead of writing")

    def handle(self, *args: Any, **options: Any) -> None:
        stale = []
        for name, render in DOCS.items():
            path = Path(settings.BASE_DIR) / "docs" / name
            text = render()
            if path.exists() and path.read_text(encoding="utf-8") == text:
                continue
            stale.append(name)
            if not options["check"]:
                path.write_text(text, encoding="utf-8")
                self.stdout.write(f"wrote docs/{name}")
        if options["check"] and stale:
            self.stderr.write(f"out of date: {', '.join(stale)} (run manage.py catalog_docs)")
            raise SystemExit(1)

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from posture.exports.verify import verify_bundle


class Command(BaseCommand):
    help = (
        "Verify an evidence bundle offline: the manifest's Ed25519 signature and every file's SHA-256 and size. "
        "Names each file altered, added or removed. Needs no database."
    )
    # Offline: no system checks (they may reach the database), and the ORM is never touched.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("bundle", type=Path, help="The bundle's zip file")
        parser.add_argument("--public-key", type=Path, help="The signer's public key (PEM), as the dashboard publishes it")
        parser.add_argument(
            "--trusted-key-id",
            action="append",
            default=[],
            help="A fingerprint (sha256:…) trusted when checking with the bundle's own key; may be repeated",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        public_pem = None
        if options["public_key"] is not None:
            try:
                public_pem = options["public_key"].read_bytes()
            except OSError as error:
                raise CommandError(f"cannot read the public key {options['public_key']}: {error.strerror}") from None
        report = verify_bundle(options["bundle"], public_key_pem=public_pem, trusted_key_ids=options["trusted_key_id"])
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError(f"{options['bundle']} does not verify.")

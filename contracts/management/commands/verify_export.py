"""Verify an evidence bundle: signature, file hashes, chain, CSV vs NDJSON, checkpoints.

Uses the same code as the standalone script in the README (contracts/ledger/verify_bundle_standalone.py),
with this deployment's public keys, or the PEM file given with --keys. Exit 0 intact, 1 otherwise.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from contracts.ledger import exports
from contracts.ledger.verify_bundle_standalone import load_keys, verify_bundle


class Command(BaseCommand):
    help = "Verify a consent evidence bundle (zip); names every problem. Exit 0 intact, 1 broken."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--keys", help="PEM file of public keys (default: this deployment's keys)")

    def handle(self, *args, file: str, keys: str | None = None, **options) -> None:

        try:
            if keys:
                with open(keys) as handle:
                    problems = verify_bundle(file, load_keys(handle.read()))
            else:
                problems = exports.verify_file(file)
        except FileNotFoundError as exc:
            raise CommandError(f"{exc.filename}: no such file") from exc
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            self.stderr.write(f"BROKEN: {len(problems)} problem(s) in {file}")
            raise SystemExit(1)
        self.stdout.write(f"OK: {file}: signature, file hashes, chain, CSV and checkpoints verify")

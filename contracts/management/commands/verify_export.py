"""Verify an evidence bundle: signature, file hashes, chain, CSV vs NDJSON, checkpoints.

Uses the same code as the standalone script in the README (contracts/ledger/verify_bundle_standalone.py),
with this deployment's public keys, or the PEM file given with --keys. Exit 0 intact, 1 otherwise.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from contracts.ledger import exports
from contracts.ledger.verify_bundle_standalone import load_keys, read_checkpoints, verify_bundle


class Command(BaseCommand):
    help = "Verify a consent evidence bundle (zip); names every problem. Exit 0 intact, 1 broken."

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument("--keys", help="PEM file of public keys (default: this deployment's keys)")
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            metavar="FILE",
            help="The organisation's own copy of signed checkpoints (a saved e-mail or its JSON); repeatable. "
            "The bundle must agree with each.",
        )

    def handle(self, *args, file: str, keys: str | None = None, checkpoint=(), **options) -> None:

        try:
            own = []
            for name in checkpoint:
                with open(name) as handle:
                    found = read_checkpoints(handle.read())
                if not found:
                    raise CommandError(f"{name}: no signed checkpoint found in this file")
                own += found
            if keys:
                with open(keys) as handle:
                    problems = verify_bundle(file, load_keys(handle.read()), own)
            else:
                problems = exports.verify_file(file, own)
        except FileNotFoundError as exc:
            raise CommandError(f"{exc.filename}: no such file") from exc
        if problems:
            for problem in problems:
                self.stderr.write(problem)
            self.stderr.write(f"BROKEN: {len(problems)} problem(s) in {file}")
            raise SystemExit(1)
        self.stdout.write(f"OK: {file}: signature, file hashes, chain, CSV and checkpoints verify")

"""Recompute every organisation's consent-ledger hash chain (or one organisation's), and hold it
against the vendor's signatures: the chain head's and every signed checkpoint's.

Exit 0: every chain is intact (prints each chain head and its checkpoints). Exit 1: a chain is broken
(names the first broken record, the first contradicted checkpoint and every problem). Exit 2: no such
organisation.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from contracts.ledger.verify import ledger_verify
from contracts.models import Organization


class Command(BaseCommand):
    help = "Verify the consent ledger hash chains: exit 0 intact, 1 broken (naming the first broken record)."

    def add_arguments(self, parser):
        parser.add_argument("--org", metavar="SLUG", help="Verify only this organisation's chain.")

    def handle(self, *args, **options):
        orgs = Organization.objects.order_by("slug")
        if options["org"]:
            orgs = orgs.filter(slug=options["org"])
            if not orgs.exists():
                raise CommandError(f"No organisation {options['org']!r}.", returncode=2)
        broken = 0
        for org in orgs:
            result = ledger_verify(org=org)
            if result.intact:
                self.stdout.write(
                    f"intact  org={org.slug} records={result.records} head=#{result.head_seq} {result.head_hash}"
                    f" checkpoints={result.checkpoints}"
                )
            else:
                broken += 1
                contradicted = (
                    f" contradicted checkpoint=#{result.contradicted_checkpoint}"
                    if result.contradicted_checkpoint is not None
                    else ""
                )
                self.stdout.write(
                    f"BROKEN  org={org.slug} first broken record=#{result.broken_seq}{contradicted}: "
                    f"{result.reason} (last good #{result.head_seq} {result.head_hash})"
                )
                for problem in result.problems[1:]:
                    self.stdout.write(f"        also: {problem}")
        if broken:
            self.stderr.write(f"{broken} broken chain(s).")
            sys.exit(1)

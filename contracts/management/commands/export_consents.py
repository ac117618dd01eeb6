"""Export the consent history of one organisation (or every one with --org '*') to a file."""

from __future__ import annotations

import hashlib

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from contracts.errors import ApplicationError
from contracts.ledger import exports
from contracts.models import ConsentExport, ExportStatus, Organization


class Command(BaseCommand):
    help = "Export consent history: --org SLUG|'*' --format csv|ndjson|pdf|bundle --out FILE [filters]"

    def add_arguments(self, parser) -> None:
        parser.add_argument("--org", required=True, help="organisation slug, or * for every organisation")
        parser.add_argument("--format", required=True, dest="fmt")
        parser.add_argument("--out", required=True)
        parser.add_argument("--from", dest="date_from", default="")
        parser.add_argument("--to", dest="date_to", default="")
        parser.add_argument("--snapshot", default="")
        parser.add_argument("--action", default="")
        parser.add_argument("--terms-version", dest="terms_version", default="")

    def handle(self, *args, org: str, fmt: str, out: str, **options) -> None:
        organization = None
        if org != "*":
            organization = Organization.objects.filter(slug=org).first()
            if organization is None:
                raise CommandError(f"No organisation {org!r}.")
        try:
            fmt = exports.export_format_parse(fmt)
            filters = exports.export_filters_parse(
                {
                    "from": options["date_from"], "to": options["date_to"], "snapshot": options["snapshot"],
                    "action": options["action"], "terms_version": options["terms_version"],
                }
            )  # fmt: skip
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.fields}") from exc
        export = exports.export_create(org=organization, fmt=fmt, filters=filters)
        with open(out, "wb") as handle:
            if fmt in exports.STREAMED_FORMATS:
                for chunk in exports.export_stream(export=export, org=organization, filters=filters):
                    handle.write(chunk)
            else:
                with transaction.atomic():
                    writer = exports.bundle_write if fmt == "bundle" else exports.pdf_write
                    result = writer(out=handle, org=organization, filters=filters)
        if fmt in exports.BUILT_FORMATS:
            with open(out, "rb") as handle:
                sha = hashlib.file_digest(handle, "sha256").hexdigest()
            ConsentExport.objects.filter(pk=export.pk).update(
                status=ExportStatus.READY, progress=100, file_sha256=sha, record_count=result["record_count"]
            )
        export.refresh_from_db()
        self.stdout.write(f"{out}: {fmt}, export #{export.pk}, sha256 {export.file_sha256}")

"""Celery tasks of the ledger: build PDF and bundle exports, expire them, sign daily checkpoints.

Beat schedule (portal/settings.py CELERY_BEAT_SCHEDULE): `ledger_checkpoints_daily` once a day,
`exports_expire` hourly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from contracts.models import ConsentExport, ExportStatus, LedgerCheckpoint

log = logging.getLogger(__name__)


def _progress(export_id: int):
    last = {"value": -1}

    def report(value: int) -> None:
        if value != last["value"]:
            last["value"] = value
            ConsentExport.objects.filter(pk=export_id).update(progress=value)

    return report


@shared_task(name="contracts.ledger.export_build", acks_late=True)
def export_build(export_id: int) -> str:
    """Build a PDF or bundle export to MEDIA_ROOT/exports; records progress, hash and expiry."""
    _, exports, _ = _modules()
    export = ConsentExport.objects.select_related("organization").filter(pk=export_id).first()
    if export is None or export.status not in (ExportStatus.PENDING, ExportStatus.RUNNING):
        return "skipped"
    ConsentExport.objects.filter(pk=export_id).update(status=ExportStatus.RUNNING, progress=1)
    org = export.organization
    filters = exports.ExportFilters.from_dict({k: v for k, v in export.filters.items() if k != "org"})
    path = exports.exports_dir() / exports.export_filename(export)
    partial = path.with_suffix(path.suffix + ".part")
    try:
        with open(partial, "wb") as out:
            if export.format == "bundle":
                result = exports.bundle_write(
                    out=out, org=org, filters=filters, progress=_progress(export_id)
                )
            else:
                result = exports.pdf_write(out=out, org=org, filters=filters, progress=_progress(export_id))
        partial.replace(path)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        log.exception("export %s failed", export_id)
        ConsentExport.objects.filter(pk=export_id).update(
            status=ExportStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        raise
    with open(path, "rb") as handle:
        sha = hashlib.file_digest(handle, "sha256").hexdigest()
    now = timezone.now()
    ConsentExport.objects.filter(pk=export_id).update(
        status=ExportStatus.READY,
        progress=100,
        record_count=result["record_count"],
        file_path=str(path.relative_to(settings.MEDIA_ROOT)),
        file_sha256=sha,
        finished_at=now,
        expires_at=now + dt.timedelta(hours=settings.EXPORT_RETENTION_HOURS),
    )
    return "ready"


@shared_task(name="contracts.ledger.exports_expire")
def exports_expire() -> int:
    """Delete built export files past their retention; the log row stays (status expired)."""
    expired = 0
    due = ConsentExport.objects.filter(status=ExportStatus.READY, expires_at__lte=timezone.now())
    for export in due.only("pk", "file_path"):
        if export.file_path:
            (Path(settings.MEDIA_ROOT) / export.file_path).unlink(missing_ok=True)
        ConsentExport.objects.filter(pk=export.pk).update(status=ExportStatus.EXPIRED, file_path="")
        expired += 1
    return expired


@shared_task(name="contracts.ledger.checkpoints_daily")
def ledger_checkpoints_daily() -> int:
    checkpoints, _, _ = _modules()
    return len(checkpoints.checkpoints_create_due())


@shared_task(
    name="contracts.ledger.checkpoint_deliver", autoretry_for=(OSError,), retry_backoff=60, max_retries=5
)
def checkpoint_deliver(checkpoint_id: int) -> int:
    checkpoints, _, _ = _modules()
    checkpoint = LedgerCheckpoint.objects.select_related("organization").filter(pk=checkpoint_id).first()
    if checkpoint is None:
        return 0
    return checkpoints.checkpoint_deliver(checkpoint=checkpoint)


@shared_task(name="contracts.ledger.verify_daily")
def ledger_verify_daily() -> dict[str, int]:
    """Verify every organisation's ledger, record the result (metrics) and mail staff once per break."""
    _, _, monitoring = _modules()
    return monitoring.ledger_verify_all()


def _modules():
    """The ledger's service modules, imported late: they queue these tasks (a task reaches its service
    late, by rule)."""
    from contracts.ledger import checkpoints, exports, monitoring  # noqa: PLC0415 -- they queue these tasks

    return checkpoints, exports, monitoring

"""Celery tasks of renewal and audit: build audit packs, release eval runs whose lease ran out, expire
built packs.

Beat schedule (portal/settings.py): `eval_runs_release_expired` every minute, `audit_packs_expire` hourly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from contracts.models import AuditPack, ExportStatus

log = logging.getLogger(__name__)


def _services():
    from contracts.renewal import auditpack, services  # noqa: PLC0415 -- a task reaches its service late (services queue tasks)

    return services, auditpack


def packs_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "audit-packs"
    path.mkdir(parents=True, exist_ok=True)
    return path


@shared_task(name="contracts.renewal.audit_pack_build", acks_late=True)
def audit_pack_build(pack_id: int) -> str:
    """Build the pack's zip to MEDIA_ROOT/audit-packs; records progress, hash and expiry."""
    services, auditpack = _services()
    pack = AuditPack.objects.select_related("organization").filter(pk=pack_id).first()
    if pack is None or pack.status not in (ExportStatus.PENDING, ExportStatus.RUNNING):
        return "skipped"
    services.audit_pack_mark(pack_id=pack_id, status=ExportStatus.RUNNING, progress=1)
    last = {"value": -1}

    def progress(value: int) -> None:
        if value != last["value"]:
            last["value"] = value
            services.audit_pack_mark(pack_id=pack_id, progress=min(value, 99))

    path = packs_dir() / auditpack.audit_pack_filename(pack)
    partial = path.with_suffix(".zip.part")
    try:
        with open(partial, "wb") as out:
            auditpack.audit_pack_write(out=out, pack=pack, progress=progress)
        partial.replace(path)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        log.exception("audit pack %s failed", pack_id)
        services.audit_pack_fail(pack_id=pack_id, error=f"{type(exc).__name__}: {exc}")
        raise
    with open(path, "rb") as handle:
        sha = hashlib.file_digest(handle, "sha256").hexdigest()
    now = timezone.now()
    services.audit_pack_mark(
        pack_id=pack_id, status=ExportStatus.READY, progress=100,
        file_path=str(path.relative_to(settings.MEDIA_ROOT)), file_sha256=sha, finished_at=now,
        expires_at=now + dt.timedelta(hours=settings.EXPORT_RETENTION_HOURS),
    )  # fmt: skip
    return "ready"


@shared_task(name="contracts.renewal.audit_packs_expire")
def audit_packs_expire() -> int:
    """Delete built packs past their retention; the row stays (status expired)."""
    services, _ = _services()
    expired = 0
    for pack in AuditPack.objects.filter(status=ExportStatus.READY, expires_at__lte=timezone.now()).only(
        "pk", "file_path"
    ):
        if pack.file_path:
            (Path(settings.MEDIA_ROOT) / pack.file_path).unlink(missing_ok=True)
        services.audit_pack_mark(pack_id=pack.pk, status=ExportStatus.EXPIRED, file_path="")
        expired += 1
    return expired


@shared_task(name="contracts.renewal.eval_runs_release_expired")
def eval_runs_release_expired() -> int:
    services, _ = _services()
    return services.eval_runs_release_expired()

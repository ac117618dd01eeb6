"""Diff PDFs rendered in the background: a job in the cache (status, progress 0-100, file path) that
a Celery task (contracts.diffs.tasks) renders into MEDIA_ROOT/diffs/<job>/, reporting progress as it goes.

Large diffs take seconds in WeasyPrint; the portal starts a job and polls its progress with htmx.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from contracts.diffs import tasks
from contracts.diffs.render import render_pdf
from contracts.diffs.selectors import diff_build, diff_filename, diff_snapshots
from contracts.errors import NotFound
from contracts.models import Organization

JOB_SECONDS = 24 * 3600
PENDING, RUNNING, READY, FAILED = "pending", "running", "ready", "failed"


def _key(job_id: str) -> str:
    return f"diffpdf:{job_id}"


def diff_pdf_job_update(job_id: str, **changes: Any) -> dict[str, Any] | None:
    job = cache.get(_key(job_id))
    if job is None:
        return None
    job.update(changes)
    cache.set(_key(job_id), job, JOB_SECONDS)
    return job


def diff_pdf_job_start(*, org: Organization, a: str, b: str) -> str:
    """Queue a PDF rendering of the diff a → b for `org`; returns the job id (valid for a day)."""
    diff_snapshots(a=a, b=b)  # 404 / 400 now rather than in the worker
    job_id = uuid.uuid4().hex
    cache.set(
        _key(job_id),
        {
            "id": job_id,
            "org_id": org.pk,
            "a": a,
            "b": b,
            "status": PENDING,
            "progress": 0,
            "path": "",
            "filename": diff_filename(a, b, "pdf"),
            "error": "",
        },
        JOB_SECONDS,
    )
    transaction.on_commit(lambda: tasks.render_diff_pdf.delay(job_id))
    return job_id


def diff_pdf_job_get(*, org: Organization, a: str, b: str, job_id: str) -> dict[str, Any]:
    """The job, if it belongs to this organisation and this pair of snapshots (404 otherwise)."""
    job = cache.get(_key(job_id)) if job_id else None
    if job is None or job["org_id"] != org.pk or (job["a"], job["b"]) != (a, b):
        raise NotFound("No such PDF job (it may have expired).")
    return job


def diff_pdf_render(*, job_id: str) -> dict[str, Any] | None:
    """Render the job's PDF to MEDIA_ROOT/diffs/<job>/<filename>, updating progress in the cache."""
    job = diff_pdf_job_update(job_id, status=RUNNING, progress=5)
    if job is None:
        return None
    org = Organization.objects.get(pk=job["org_id"])
    document = diff_build(org=org, a=job["a"], b=job["b"])
    diff_pdf_job_update(job_id, progress=15)
    pdf = render_pdf(document, progress=lambda value: diff_pdf_job_update(job_id, progress=value))
    folder = Path(settings.MEDIA_ROOT) / "diffs" / job_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / job["filename"]
    path.write_bytes(pdf)
    return diff_pdf_job_update(
        job_id, status=READY, progress=100, path=str(path), content_sha256=document["content_sha256"]
    )

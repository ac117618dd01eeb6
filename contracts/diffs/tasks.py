"""The Celery task that renders a diff PDF job (contracts.diffs.services starts and tracks the jobs)."""

from __future__ import annotations

import logging

from celery import shared_task

from contracts.errors import ApplicationError

log = logging.getLogger(__name__)


@shared_task(bind=True, max_retries=2, name="contracts.diffs.render_pdf")
def render_diff_pdf(self, job_id: str) -> None:
    services = _services()
    try:
        services.diff_pdf_render(job_id=job_id)
    except ApplicationError as exc:
        services.diff_pdf_job_update(job_id, status=services.FAILED, error=exc.message)
    except Exception as exc:
        if self.request.retries < self.max_retries and not self.request.is_eager:
            services.diff_pdf_job_update(job_id, status=services.PENDING, error=f"retrying: {exc}")
            raise self.retry(exc=exc, countdown=5 * (self.request.retries + 1)) from exc
        log.exception("diff PDF job %s failed", job_id)
        services.diff_pdf_job_update(job_id, status=services.FAILED, error=str(exc) or type(exc).__name__)


def _services():
    from contracts.diffs import services  # noqa: PLC0415 -- a task reaches its service late (services queue tasks)

    return services

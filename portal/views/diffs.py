"""The diff page (/o/<org>/diff/<a>...<b>/), its downloads and background PDF, and the baseline page."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from contracts.diffs.render import chart
from contracts.diffs.selectors import (
    diff_build,
    diff_filename,
    diff_format_parse,
    diff_snapshots,
    pdf_renders_inline,
)
from contracts.diffs.services import READY, diff_pdf_job_get, diff_pdf_job_start
from contracts.errors import NotFound
from contracts.evals import selectors as evals_selectors
from contracts.evals import services as evals_services
from contracts.http import diff_file_response
from contracts.models import Snapshot
from contracts.renewal import selectors as renewal_selectors
from contracts.tenancy.auth import client_ip
from contracts.tenancy.roles import Permission
from portal.access import may, org_view


@require_GET
@org_view()
def diff_page(request: HttpRequest, a: str, b: str) -> HttpResponse:
    fmt = request.GET.get("format")
    document = diff_build(org=request.org, a=a, b=b)
    if fmt is not None:
        return diff_file_response(document, diff_format_parse(fmt))
    family_snapshots = list(
        Snapshot.objects.filter(family__slug=document["family"], published_at__isnull=False)
        .order_by("released_at")
        .values_list("name", flat=True)
    )
    return render(
        request,
        "contracts/diffs/page.html",
        {
            "diff": document,
            "chart": chart(document),
            "pdf_inline": pdf_renders_inline(document),
            "family_snapshots": family_snapshots,
            "filenames": {fmt: diff_filename(a, b, fmt) for fmt in ("json", "md", "html", "pdf")},
        },
    )


@require_GET
@org_view()
def diff_pick(request: HttpRequest) -> HttpResponse:
    """The snapshot picker's form target: redirect to /diff/<a>...<b>/."""
    a, b = request.GET.get("a", ""), request.GET.get("b", "")
    diff_snapshots(a=a, b=b)
    return redirect("portal:diff", org=request.org.slug, a=a, b=b)


def _job_context(request: HttpRequest, a: str, b: str, job: dict) -> dict:
    base = reverse("portal:diff_pdf", kwargs={"org": request.org.slug, "a": a, "b": b})
    return {
        "job": job,
        "a": a,
        "b": b,
        "poll_url": f"{base}?job={job['id']}",
        "download_url": reverse("portal:diff_pdf_download", kwargs={"org": request.org.slug, "a": a, "b": b})
        + f"?job={job['id']}",
    }


@org_view()
def diff_pdf(request: HttpRequest, a: str, b: str) -> HttpResponse:
    """POST starts a background rendering; GET ?job= answers its progress (an htmx fragment)."""
    if request.method == "POST":
        job_id = diff_pdf_job_start(org=request.org, a=a, b=b)
    elif request.method == "GET":
        job_id = request.GET.get("job", "")
    else:
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    job = diff_pdf_job_get(org=request.org, a=a, b=b, job_id=job_id)
    context = _job_context(request, a, b, job)
    if request.htmx:
        return render(request, "contracts/diffs/_pdf_progress.html", context)
    if request.method == "POST":
        return redirect(context["poll_url"])
    return render(request, "contracts/diffs/pdf_job.html", context)


@require_GET
@org_view()
def diff_pdf_download(request: HttpRequest, a: str, b: str) -> HttpResponse:
    job = diff_pdf_job_get(org=request.org, a=a, b=b, job_id=request.GET.get("job", ""))
    path = Path(job.get("path") or "")
    if job["status"] != READY or not path.is_file():
        raise NotFound("This PDF is not ready (or has expired).")
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=job["filename"], content_type="application/pdf"
    )


def baselines_context(request: HttpRequest) -> dict:
    results = evals_selectors.eval_result_list(org=request.org)
    current = {b.suite_id: b for b in evals_selectors.baseline_list(org=request.org)}
    suites: dict[int, dict] = {}
    for result in results:
        entry = suites.setdefault(
            result.suite_id, {"suite": result.suite, "results": [], "baseline": current.get(result.suite_id)}
        )
        entry["results"].append(result)
    return {
        "suites": list(suites.values()),
        "is_admin": may(request, Permission.MARK_BASELINE),
        "may_refresh": may(request, Permission.REQUEST_EVAL_REFRESH),
        # Renewal: refresh a procurement suite on the snapshot served now or a proposed one.
        "refresh_targets": renewal_selectors.refresh_targets(org=request.org),
        "eval_runs": renewal_selectors.eval_run_list(org=request.org),
    }


@require_GET
@org_view()
def baselines(request: HttpRequest) -> HttpResponse:
    return render(request, "contracts/diffs/baselines.html", baselines_context(request))


@require_POST
@org_view(Permission.MARK_BASELINE)
def baseline_mark(request: HttpRequest, result_id: int) -> HttpResponse:
    result = evals_selectors.eval_result_get(org=request.org, result_id=result_id)
    evals_services.baseline_mark(
        org=request.org,
        result=result,
        acting_user=request.user,
        ip=client_ip(request),
        user_agent=request.headers.get("User-Agent", ""),
    )
    messages.success(
        request, f"{result.suite.name} on {result.snapshot.name} is now your procurement baseline."
    )
    return redirect("portal:baselines", org=request.org.slug)

"""Renewal and audit pages: refresh a procurement eval (from the baselines page or a migration's page)
and follow its progress; build an audit pack (from the exports page) and download it.

Rows of open runs and packs poll themselves with htmx (`hx-trigger="every 2s"`) and stop once done;
without JavaScript the pages are ordinary forms and a reload shows the progress.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from contracts.consent import selectors as consent_selectors
from contracts.errors import ApplicationError
from contracts.renewal import selectors, services
from contracts.renewal.api import audit_pack_file_response
from contracts.tenancy.roles import Permission
from portal.access import org_view
from portal.views.diffs import baselines_context
from portal.views.exports import exports_context
from portal.views.migrations import migration_page_context


def parse_target(value: str) -> dict:
    """A refresh form's target: "alias:<name>", "snapshot:<name>" or "migration:<id>"."""
    kind, _, name = (value or "").partition(":")
    if kind == "alias" and name:
        return {"alias": name}
    if kind == "snapshot" and name:
        return {"snapshot": name}
    if kind == "migration" and name.isdigit() and len(name) < 16:
        return {"migration_id": int(name)}
    raise ApplicationError(
        "Choose the snapshot to refresh the eval on.", fields={"target": "a served or proposed snapshot"}
    )


@require_POST
@org_view(Permission.REQUEST_EVAL_REFRESH)
def eval_run_new(request: HttpRequest) -> HttpResponse:
    """Queue a refresh. Errors come back on the page the form was on, with the choice kept."""
    migration_id = request.POST.get("from_migration", "")
    try:
        run, created = services.eval_run_request(
            org=request.org,
            suite=request.POST.get("suite", ""),
            acting_user=request.user,
            **parse_target(request.POST.get("target", "")),
        )
    except ApplicationError as error:
        if migration_id.isdigit():
            migration = consent_selectors.migration_get(org=request.org, migration_id=int(migration_id))
            context = migration_page_context(request, migration)
            context.update(refresh_error=error, refresh_values=request.POST)
            return render(request, "contracts/migrations/detail.html", context, status=400)
        context = baselines_context(request)
        context.update(refresh_error=error, refresh_values=request.POST)
        return render(request, "contracts/diffs/baselines.html", context, status=400)
    if request.htmx:
        return render(request, "contracts/renewal/_run_row.html", {"run": run, "org": request.org})
    messages.success(
        request,
        f"{run.suite.name} on {run.snapshot.name}: "
        + ("queued for the vendor's eval runner." if created else "a refresh is already under way."),
    )
    if migration_id.isdigit():
        return redirect("portal:migration_detail", org=request.org.slug, migration_id=int(migration_id))
    return redirect("portal:baselines", org=request.org.slug)


@require_GET
@org_view()
def eval_run_row(request: HttpRequest, run_id: int) -> HttpResponse:
    run = selectors.eval_run_get(org=request.org, run_id=run_id)
    return render(request, "contracts/renewal/_run_row.html", {"run": run, "org": request.org})


@require_POST
@org_view(Permission.BUILD_AUDIT_PACK)
def audit_pack_new(request: HttpRequest) -> HttpResponse:
    try:
        pack = services.audit_pack_request(
            org=request.org,
            aliases=request.POST.getlist("aliases"),
            period_from=request.POST.get("from", ""),
            period_to=request.POST.get("to", ""),
            acting_user=request.user,
        )
    except ApplicationError as error:
        context = exports_context(request)
        context.update(
            pack_error=error, pack_values=request.POST, pack_aliases=request.POST.getlist("aliases")
        )
        return render(request, "contracts/exports/page.html", context, status=400)
    if request.htmx:
        return render(request, "contracts/renewal/_pack_row.html", {"pack": pack, "org": request.org})
    messages.success(request, f"Audit pack #{pack.pk} is being built.")
    return redirect("portal:exports", org=request.org.slug)


@require_GET
@org_view(Permission.BUILD_AUDIT_PACK)
def audit_pack_row(request: HttpRequest, pack_id: int) -> HttpResponse:
    pack = selectors.audit_pack_get(org=request.org, pack_id=pack_id)
    return render(request, "contracts/renewal/_pack_row.html", {"pack": pack, "org": request.org})


@require_GET
@org_view(Permission.BUILD_AUDIT_PACK)
def audit_pack_download(request: HttpRequest, pack_id: int) -> HttpResponse:
    return audit_pack_file_response(selectors.audit_pack_get(org=request.org, pack_id=pack_id))

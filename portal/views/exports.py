"""The exports page: legal and admins export the consent history, follow built exports, see checkpoints.

The page's one form POSTs to `download` (with its CSRF token: a cross-site link or navigation can
neither log an export nor start a job): CSV and NDJSON stream from it, PDF and bundle are queued
there and followed with htmx polling of `export_row`. `export_new` (POST) queues one for htmx.
Staff export any or every organisation through the API (`?org=<slug>` or `?org=*`).
"""

from __future__ import annotations

from pathlib import Path

from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from contracts import pdfsign, signing
from contracts.errors import ApplicationError
from contracts.http import export_file_response
from contracts.ledger import exports, tasks, verify_bundle_standalone
from contracts.ledger.checkpoints import checkpoint_as_dict, checkpoint_list
from contracts.models import LedgerAction
from contracts.pins.selectors import pin_list
from contracts.renewal import selectors as renewal_selectors
from contracts.tenancy.roles import Permission
from portal.access import org_view


def exports_context(request: HttpRequest, *, error: ApplicationError | None = None) -> dict:
    return {
        # Renewal and audit: audit packs of this organisation, and the aliases a pack may cover.
        "audit_packs": renewal_selectors.audit_pack_list(org=request.org),
        "pack_alias_choices": [pin.alias.name for pin in pin_list(org=request.org)],
        "exports": exports.export_list(org=request.org),
        "checkpoints": [
            (cp, checkpoint_as_dict(cp, org_slug=request.org.slug)) for cp in checkpoint_list(org=request.org)
        ],
        "actions": LedgerAction.choices,
        "formats": exports.FORMATS,
        "values": request.GET if request.method == "GET" else request.POST,
        "error": error,
    }


@require_GET
@org_view(Permission.EXPORT_LEDGER)
def exports_page(request: HttpRequest) -> HttpResponse:
    return render(request, "contracts/exports/page.html", exports_context(request))


@require_POST
@org_view(Permission.EXPORT_LEDGER)
def download(request: HttpRequest) -> HttpResponse:
    """Stream a CSV/NDJSON export (logged); a PDF/bundle request here is queued like export_new."""
    try:
        fmt = exports.export_format_parse(request.POST.get("format"))
        filters = exports.export_filters_parse(request.POST)
    except ApplicationError as error:
        return render(
            request, "contracts/exports/page.html", exports_context(request, error=error), status=400
        )
    export = exports.export_create(org=request.org, fmt=fmt, filters=filters, requested_by=request.user)
    if fmt in exports.BUILT_FORMATS:
        _queue(export.pk)
        return redirect("portal:exports", org=request.org.slug)
    response = StreamingHttpResponse(
        exports.export_stream(export=export, org=request.org, filters=filters),
        content_type=exports.CONTENT_TYPES[fmt],
    )
    response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(export)}"'
    return response


def _queue(export_id: int) -> None:
    transaction.on_commit(lambda: tasks.export_build.delay(export_id))


@require_POST
@org_view(Permission.EXPORT_LEDGER)
def export_new(request: HttpRequest) -> HttpResponse:
    """Queue a PDF or bundle export; htmx gets the new row (which polls), others the page."""
    try:
        fmt = exports.export_format_parse(request.POST.get("format"))
        filters = exports.export_filters_parse(request.POST)
        if fmt not in exports.BUILT_FORMATS:
            raise ApplicationError(
                "CSV and NDJSON download directly: use their buttons.", fields={"format": "pdf or bundle"}
            )
    except ApplicationError as error:
        return render(
            request, "contracts/exports/page.html", exports_context(request, error=error), status=400
        )
    export = exports.export_create(org=request.org, fmt=fmt, filters=filters, requested_by=request.user)
    _queue(export.pk)
    if request.htmx:
        return render(request, "contracts/exports/_row.html", {"export": export, "org": request.org})
    return redirect("portal:exports", org=request.org.slug)


@require_GET
@org_view(Permission.EXPORT_LEDGER)
def export_row(request: HttpRequest, export_id: int) -> HttpResponse:
    """One export's row: progress while it builds (htmx polls this), the download link when ready."""
    export = exports.export_get(org=request.org, export_id=export_id)
    return render(request, "contracts/exports/_row.html", {"export": export, "org": request.org})


@require_GET
@org_view(Permission.EXPORT_LEDGER)
def export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    export = exports.export_get(org=request.org, export_id=export_id)
    return export_file_response(export)


@require_GET
def signing_key(request: HttpRequest) -> HttpResponse:
    """Public Ed25519 keys of the consent evidence: newest as plain PEM, `?kid=` one, `?all=1` every one."""
    kid = request.GET.get("kid")
    if request.GET.get("all"):
        body = exports.public_keys_pem()
    elif kid:
        if kid not in signing.keyring(exports.SIGNING_PURPOSE):
            return HttpResponse("Unknown key id.\n", status=404, content_type="text/plain; charset=utf-8")
        body = signing.public_key_pem(exports.SIGNING_PURPOSE, kid)
    else:
        kid = signing.current_key_id(exports.SIGNING_PURPOSE)
        body = signing.public_key_pem(exports.SIGNING_PURPOSE, kid)
    response = HttpResponse(body, content_type="application/x-pem-file")
    if kid:
        response["X-Key-Id"] = kid
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def pdf_signing_cert(request: HttpRequest) -> HttpResponse:
    """The certificate that signs the portal's PDFs (PAdES): trust it to validate a self-signed install."""
    response = HttpResponse(pdfsign.certificate_pem(), content_type="application/x-pem-file")
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
@org_view()
def verifier_download(request: HttpRequest) -> HttpResponse:
    """The standalone verifier (Python standard library plus `cryptography`), to check an evidence
    bundle offline without trusting the portal."""
    source = Path(verify_bundle_standalone.__file__).read_bytes()
    response = HttpResponse(source, content_type="text/x-python; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="verify_bundle.py"'
    return response

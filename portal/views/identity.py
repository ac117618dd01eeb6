"""Identity and accountability pages of an organisation: the audit log."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from contracts.audit import selectors as audit_selectors
from contracts.audit.csv import audit_csv_rows
from contracts.models import AuditAction
from contracts.tenancy.roles import Permission, permission_require
from portal.access import org_view

AUDIT_PAGE_SIZE = 50


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(required=False, choices=[("", "Any action"), *AuditAction.choices])
    actor = forms.CharField(required=False, max_length=254, label="Actor contains")
    target_type = forms.CharField(required=False, max_length=40, label="Object type")
    since = forms.DateField(required=False, label="From (date)")
    until = forms.DateField(required=False, label="To (date, inclusive)")

    def clean(self):
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "Must be on or after the start date.")
        return data

    def selector_kwargs(self) -> dict:
        data = self.cleaned_data
        since = data.get("since")
        until = data.get("until")
        return {
            "action": data.get("action") or None,
            "actor": data.get("actor") or None,
            "target_type": data.get("target_type") or None,
            "since": dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC) if since else None,
            "until": dt.datetime.combine(until, dt.time.max, tzinfo=dt.UTC) if until else None,
        }


@require_GET
@org_view()
def audit_log(request: HttpRequest) -> HttpResponse:
    permission_require(request.membership.role, Permission.VIEW_AUDIT_LOG)
    form = AuditFilterForm(request.GET or None)
    valid = form.is_valid() if request.GET else True
    kwargs = form.selector_kwargs() if request.GET and valid else {}
    if valid and request.GET.get("format") == "csv":
        entries = audit_selectors.audit_list(org=request.org, **kwargs)
        response = StreamingHttpResponse(audit_csv_rows(entries), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="audit-{request.org.slug}.csv"'
        return response
    entries = audit_selectors.audit_list(org=request.org, **kwargs) if valid else None
    page = None
    if entries is not None:
        page = Paginator(entries.select_related(None), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("format", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "target_types": audit_selectors.audit_target_types(org=request.org),
    }
    return render(request, "portal/identity/audit.html", context, status=200 if valid else 400)

"""Customer-facing pages of the portal."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from contracts import selectors
from contracts.models import Membership
from portal.access import org_view


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send a signed-in user to their first organisation, or say they have none."""
    membership = Membership.objects.filter(user=request.user).select_related("organization").first()
    if membership is None:
        return render(request, "portal/no_org.html", status=200)
    return redirect("portal:dashboard", org=membership.organization.slug)


@require_GET
@org_view()
def dashboard(request: HttpRequest) -> HttpResponse:
    pins = list(selectors.pin_list(org=request.org))
    return render(request, "portal/dashboard.html", {"pins": pins})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness probe, and the do-nothing baseline of the resolve benchmark."""
    return JsonResponse({"ok": True})

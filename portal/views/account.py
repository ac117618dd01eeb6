"""Account pages beyond django.contrib.auth's: choosing an organisation, and the error pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from contracts.models import Membership


@require_GET
@login_required
def org_switch(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("organization")
    return render(request, "portal/org_switch.html", {"memberships": memberships})


def _error(request: HttpRequest, status: int, message: str) -> HttpResponse:
    template = "portal/_error.html" if getattr(request, "htmx", False) else "portal/error.html"
    return render(request, template, {"status": status, "error": {"message": message}}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400, "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403, "You do not have permission to do this.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(
        request, 404, "There is nothing here, or it belongs to an organisation you are not part of."
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500, "Something went wrong on our side. The error has been logged.")

"""Account pages beyond django.contrib.auth's: choosing an organisation, a person's preferences (the
time zone pages show instants in), and the error pages."""

from __future__ import annotations

import hashlib
import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from contracts.cache import counter_hit
from contracts.errors import ApplicationError
from contracts.models import Membership
from contracts.tenancy.auth import client_ip
from contracts.tenancy.selectors import time_zone_choices, user_time_zone
from contracts.tenancy.services import user_preference_update
from portal.exceptions import envelope
from portal.middleware import TIME_ZONE_SESSION_KEY


@require_GET
@login_required
def org_switch(request: HttpRequest) -> HttpResponse:
    memberships = Membership.objects.filter(user=request.user).select_related("organization")
    return render(request, "portal/org_switch.html", {"memberships": memberships})


def _preferences(request: HttpRequest, *, chosen: str, error: ApplicationError | None = None) -> HttpResponse:
    context = {
        "zones": time_zone_choices(),
        "chosen": chosen,
        "saved": user_time_zone(user=request.user),
        "error": error,
        "now": timezone.now(),
        "next": _safe_next(request),
    }
    return render(request, "portal/preferences.html", context, status=400 if error else 200)


def _safe_next(request: HttpRequest) -> str:
    """Where to go back to after saving: a path on this site only."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    return target if target.startswith("/") and not target.startswith("//") else ""


@require_GET
@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    return _preferences(request, chosen=user_time_zone(user=request.user))


@require_POST
@login_required
def preferences_save(request: HttpRequest) -> HttpResponse:
    typed = request.POST.get("time_zone", "")
    try:
        preference = user_preference_update(acting_user=request.user, time_zone=typed)
    except ApplicationError as error:
        return _preferences(request, chosen=typed, error=error)
    request.session[TIME_ZONE_SESSION_KEY] = preference.time_zone
    timezone.activate(zoneinfo.ZoneInfo(preference.time_zone))
    messages.success(request, f"Times are now shown in {preference.time_zone}.")
    return redirect(_safe_next(request) or "portal:preferences")


def _error(request: HttpRequest, status: int, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        code = {400: "invalid", 403: "forbidden", 404: "not_found"}.get(status, "server_error")
        return JsonResponse(envelope(code, message), status=status)
    template = "portal/_error.html" if getattr(request, "htmx", False) else "portal/error.html"
    return render(request, template, {"status": status, "error": {"message": message}}, status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 400, "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return _error(request, 403, "You do not have permission to do this.")


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if request.path.startswith("/api/"):
        return _error(request, 404, "No API route or object at this path.")
    return _error(
        request, 404, "There is nothing here, or it belongs to an organisation you are not part of."
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return _error(request, 500, "Something went wrong on our side. The error has been logged.")


class RateLimitedPasswordResetView(auth_views.PasswordResetView):
    """Django's password reset, with at most PASSWORD_RESET_LIMIT_PER_EMAIL requests per address and
    PASSWORD_RESET_LIMIT_PER_CLIENT per client address in PASSWORD_RESET_WINDOW_SECONDS. Over the
    limit the form answers 429 with an error and sends nothing, whether the address has an account
    or not (so the limit reveals nothing about accounts)."""

    def form_valid(self, form):
        window = settings.PASSWORD_RESET_WINDOW_SECONDS
        email = form.cleaned_data["email"].strip().lower()
        throttle = caches["throttle"]
        per_client = counter_hit(throttle, f"pwreset:ip:{client_ip(self.request) or '-'}", window)
        per_email = counter_hit(
            throttle, "pwreset:email:" + hashlib.sha256(email.encode()).hexdigest(), window
        )
        if (
            per_client > settings.PASSWORD_RESET_LIMIT_PER_CLIENT
            or per_email > settings.PASSWORD_RESET_LIMIT_PER_EMAIL
        ):
            minutes = max(1, window // 60)
            form.add_error(
                "email",
                f"Too many password reset requests: try again in {minutes} minutes. "
                "If a message already arrived, use the link in it.",
            )
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        return super().form_valid(form)

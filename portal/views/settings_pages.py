"""Organisation settings: upgrade policies of the pins and API keys. Admins change; others read."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from contracts.errors import ApplicationError
from contracts.models import UpgradePolicy
from contracts.pins import selectors as pins_selectors
from contracts.pins import services as pins_services
from contracts.tenancy import selectors as tenancy_selectors
from contracts.tenancy import services as tenancy_services
from contracts.tenancy.roles import Permission
from portal.access import org_view
from portal.views.dashboard import annotate_pin


@require_GET
@org_view()
def settings_home(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    pins = [annotate_pin(pin, now) for pin in pins_selectors.pin_list(org=request.org)]
    return render(request, "portal/settings.html", {"pins": pins, "policy_choices": UpgradePolicy.choices})


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def pin_policy(request: HttpRequest, pin_id: int) -> HttpResponse:
    pin = pins_selectors.pin_get(org=request.org, pin_id=pin_id)
    before = pin.policy
    pins_services.pin_policy_change(pin=pin, policy=request.POST.get("policy", ""), acting_user=request.user)
    pin = annotate_pin(pins_selectors.pin_get(org=request.org, pin_id=pin_id), timezone.now())
    changed = pin.policy != before
    if request.htmx:
        return render(
            request,
            "portal/settings.html#policy-row",
            {"pin": pin, "policy_choices": UpgradePolicy.choices, "saved": changed},
        )
    if changed:
        messages.success(request, f"{pin.alias.name}: upgrade policy is now “{pin.get_policy_display()}”.")
    return redirect("portal:settings", org=request.org.slug)


@require_GET
@org_view(Permission.MANAGE_SETTINGS)
def api_keys(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/api_keys.html", {"keys": tenancy_selectors.api_key_list(org=request.org)})


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def api_key_create(request: HttpRequest) -> HttpResponse:
    try:
        key, raw = tenancy_services.api_key_create(
            org=request.org, name=request.POST.get("name", ""), acting_user=request.user
        )
    except ApplicationError as error:
        context = {"keys": tenancy_selectors.api_key_list(org=request.org), "error": error}
        return render(request, "portal/api_keys.html", context, status=error.status_code)
    # The secret exists only in this response: rendered here, never redirected through a session.
    context = {"keys": tenancy_selectors.api_key_list(org=request.org), "new_key": key, "raw_key": raw}
    response = render(request, "portal/api_keys.html", context, status=201)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def api_key_revoke(request: HttpRequest, key_id: int) -> HttpResponse:
    key = tenancy_services.api_key_revoke(
        api_key=tenancy_selectors.api_key_get(org=request.org, key_id=key_id), acting_user=request.user
    )
    messages.success(request, f"Key “{key.name}” ({key.prefix}…) is revoked; requests with it now fail.")
    return redirect("portal:api_keys", org=request.org.slug)

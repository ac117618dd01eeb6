"""Notification pages: the organisation's notification settings and log, acknowledgement and
unsubscribe links from e-mails, and the embedded default's outbox."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contracts.errors import ApplicationError
from contracts.tenancy.roles import Permission
from notifications import selectors, services
from notifications.mail import outbox_messages
from notifications.models import WebhookEvent
from portal.access import org_view


@require_GET
@login_required
def outbox(request: HttpRequest) -> HttpResponse:
    """The embedded default's sent mail (mounted only when DEBUG is on). Staff read every message; any
    other signed-in person only the mail addressed to them, so nobody reads another's reset link."""
    recipient = None if request.user.is_staff else (request.user.email or "")
    return render(
        request,
        "notifications/outbox.html",
        {"messages_sent": outbox_messages(recipient=recipient), "everyone": recipient is None},
    )


def _page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    org = request.org
    token = selectors.calendar_token_active(org=org)
    calendar_url = (
        f"{settings.SITE_URL}{reverse('notifications-api:calendar')}?token={token.token}" if token else ""
    )
    context = {
        "contacts": selectors.contact_list(org=org),
        "role_recipients": services.role_recipients(org_id=org.pk),
        "endpoints": selectors.webhook_endpoint_list(org=org),
        "deliveries": selectors.webhook_delivery_log(org=org),
        "notices": Paginator(selectors.notice_list(org=org), 25).get_page(request.GET.get("page")),
        "calendar_url": calendar_url,
        "events": WebhookEvent.choices,
        "is_admin": request.membership.role == "admin",
        "can_see_calendar": request.membership.role in ("admin", "legal"),
        **extra,
    }
    return render(request, "notifications/settings.html", context, status=status)


def _back(request: HttpRequest) -> HttpResponse:
    return redirect("portal:notifications", org=request.org.slug)


@require_GET
@org_view()
def notifications_page(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def contact_add(request: HttpRequest) -> HttpResponse:
    try:
        contact = services.contact_add(
            org=request.org,
            email=request.POST.get("email", ""),
            name=request.POST.get("name", ""),
            acting_user=request.user,
        )
    except ApplicationError as error:
        return _page(request, status=error.status_code, error=error)
    messages.success(request, f"{contact.email} will receive notices.")
    return _back(request)


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def contact_remove(request: HttpRequest, contact_id: int) -> HttpResponse:
    contact = selectors.contact_get(org=request.org, contact_id=contact_id)
    services.contact_remove(contact=contact, acting_user=request.user)
    messages.success(request, f"{contact.email} no longer receives notices.")
    return _back(request)


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def webhook_add(request: HttpRequest) -> HttpResponse:
    try:
        endpoint = services.webhook_endpoint_create(
            org=request.org,
            url=request.POST.get("url", "").strip(),
            events=request.POST.getlist("events"),
            description=request.POST.get("description", ""),
            acting_user=request.user,
        )
    except ApplicationError as error:
        return _page(request, status=error.status_code, error=error)
    return _page(request, status=201, new_secret=endpoint.secret, new_secret_endpoint=endpoint)


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def webhook_rotate(request: HttpRequest, webhook_id: int) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(org=request.org, webhook_id=webhook_id)
    endpoint = services.webhook_endpoint_rotate_secret(endpoint=endpoint, acting_user=request.user)
    return _page(request, new_secret=endpoint.secret, new_secret_endpoint=endpoint)


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def webhook_test(request: HttpRequest, webhook_id: int) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(org=request.org, webhook_id=webhook_id)
    services.webhook_send_test(endpoint=endpoint)
    messages.success(request, f"Test event queued for {endpoint.url}; see the delivery log.")
    return _back(request)


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def webhook_delete(request: HttpRequest, webhook_id: int) -> HttpResponse:
    endpoint = selectors.webhook_endpoint_get(org=request.org, webhook_id=webhook_id)
    services.webhook_endpoint_delete(endpoint=endpoint, acting_user=request.user)
    messages.success(request, f"Removed {endpoint.url}.")
    return _back(request)


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def calendar_regenerate(request: HttpRequest) -> HttpResponse:
    services.calendar_token_regenerate(org=request.org, acting_user=request.user)
    messages.success(request, "New calendar link issued; the previous link no longer works.")
    return _back(request)


@require_POST
@org_view(Permission.MANAGE_SETTINGS)
def calendar_revoke(request: HttpRequest) -> HttpResponse:
    services.calendar_token_revoke(org=request.org, acting_user=request.user)
    messages.success(request, "Calendar link revoked.")
    return _back(request)


@require_POST
@org_view()
def feed_token_issue(request: HttpRequest) -> HttpResponse:
    """Any member: a personal link for feed readers and calendars (the previous one stops working)."""
    services.feed_token_issue(org=request.org, acting_user=request.user)
    messages.success(request, "New personal feed link issued; your previous link no longer works.")
    return redirect("portal:changelog", org=request.org.slug)


@require_POST
@org_view()
def feed_token_revoke(request: HttpRequest) -> HttpResponse:
    services.feed_token_revoke(org=request.org, acting_user=request.user)
    messages.success(request, "Your personal feed link is revoked.")
    return redirect("portal:changelog", org=request.org.slug)


@require_http_methods(["GET", "POST"])
def notice_ack(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the notice and a button; POST records the acknowledgement (link scanners only GET)."""
    notice, email = services.ack_token_load(token)
    if request.method == "POST":
        notice = services.notice_acknowledge(token=token, user=request.user)
    return render(request, "notifications/ack.html", {"notice": notice, "email": email})


@csrf_exempt  # RFC 8058 one-click unsubscribe: mail clients POST without a CSRF token.
@require_http_methods(["GET", "POST"])
def notice_unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    done = None
    if request.method == "POST":
        done = services.unsubscribe(token=token)
    else:
        services.unsubscribe_token_check(token=token)
    return render(request, "notifications/unsubscribe.html", {"done": done})

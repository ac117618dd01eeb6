"""Billing page: tier, extended-support grants, Stripe customer portal and Checkout (admins buy)."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from contracts.billing import selectors as billing_selectors
from contracts.billing import services as billing_services
from contracts.billing import stripe as billing_stripe
from contracts.pins import selectors as pins_selectors
from contracts.tenancy.roles import Permission
from portal.access import may, org_view


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _form_action_origins() -> list[str]:
    """CSP form-action also governs the redirect a form POST answers with (Checkout, the portal)."""
    origins = list(settings.STRIPE_REDIRECT_ORIGINS)
    if settings.STRIPE_API_BASE:
        origins.append(_origin(settings.STRIPE_API_BASE))
    return origins


def _billing_url(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("portal:billing", kwargs={"org": request.org.slug}))


def offer_for(org, snapshot) -> billing_selectors.PurchaseOption | None:
    """The extended-support offer a page may show for `snapshot`: only while the organisation can
    still buy it (a pin on it, deprecated or retired, offered, not yet covered), with its price."""
    option = next(
        (o for o in billing_selectors.extended_support_options(org=org) if o.snapshot.pk == snapshot.pk), None
    )
    if option is None or not option.purchasable:
        return None
    return dataclasses.replace(option, price=billing_stripe.price_text(snapshot.extended_support_price_id))


@require_GET
@org_view()
def billing_page(request: HttpRequest) -> HttpResponse:
    org = request.org
    org.refresh_from_db(fields=["tier", "offered_terms", "stripe_customer_id"])
    context = {
        "configured": billing_stripe.billing_configured(),
        "can_simulate": settings.DEBUG and not billing_stripe.billing_configured(),
        "is_admin": may(request, Permission.BUY_EXTENDED_SUPPORT),
        "grants": billing_selectors.extended_support_list(org=org),
        "options": [
            dataclasses.replace(
                option,
                price=billing_stripe.price_text(option.snapshot.extended_support_price_id)
                if option.purchasable
                else "",
            )
            for option in billing_selectors.extended_support_options(org=org)
        ],
        "offered_terms": org.offered_terms,
        "checkout": request.GET.get("checkout", ""),
    }
    response = render(request, "contracts/billing/page.html", context)
    response._csp_update = {"form-action": _form_action_origins()}
    return response


@require_POST
@org_view(Permission.BUY_EXTENDED_SUPPORT)
def billing_portal(request: HttpRequest) -> HttpResponse:
    url = billing_services.billing_portal_session_create(org=request.org, return_url=_billing_url(request))
    return HttpResponseRedirect(url, status=303)


def _confirm_context(request: HttpRequest, snapshot_name: str) -> dict:
    """What the confirmation shows: the snapshot, the aliases on it, the retirement date now and
    after the purchase, and the price (from Stripe, or the configured price)."""
    option = billing_selectors.extended_support_option(org=request.org, snapshot_name=snapshot_name)
    retirement = pins_selectors.effective_retirement(org=request.org, snapshot=option.snapshot)
    return {
        "option": option,
        "retirement": retirement,
        "price": billing_stripe.price_text(option.snapshot.extended_support_price_id),
        "configured": billing_stripe.billing_configured(),
        "can_simulate": settings.DEBUG and not billing_stripe.billing_configured(),
    }


@require_GET
@org_view(Permission.BUY_EXTENDED_SUPPORT)
def extended_support_confirm(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    """The confirmation step before a purchase: nothing is bought by a single click."""
    response = render(request, "contracts/billing/confirm.html", _confirm_context(request, snapshot_id))
    response._csp_update = {"form-action": _form_action_origins()}
    return response


def _unconfirmed(request: HttpRequest) -> HttpResponse | None:
    """The confirmation page again, with the error beside the box, when it was not ticked."""
    if request.POST.get("confirm") == "yes":
        return None
    context = _confirm_context(request, request.POST.get("snapshot", ""))
    context["confirm_error"] = "Tick the box to confirm this purchase."
    response = render(request, "contracts/billing/confirm.html", context, status=400)
    response._csp_update = {"form-action": _form_action_origins()}
    return response


@require_POST
@org_view(Permission.BUY_EXTENDED_SUPPORT)
def extended_support_checkout(request: HttpRequest) -> HttpResponse:
    if (refusal := _unconfirmed(request)) is not None:
        return refusal
    back = _billing_url(request)
    checkout = billing_services.extended_support_checkout_create(
        org=request.org,
        snapshot_name=request.POST.get("snapshot", ""),
        acting_user=request.user,
        success_url=back + "?checkout=success",
        cancel_url=back + "?checkout=cancelled",
    )
    return HttpResponseRedirect(checkout.url, status=303)


@require_POST
@org_view(Permission.BUY_EXTENDED_SUPPORT)
def extended_support_simulate(request: HttpRequest) -> HttpResponse:
    if (refusal := _unconfirmed(request)) is not None:
        return refusal
    grant = billing_services.extended_support_simulate(
        org=request.org, snapshot_name=request.POST.get("snapshot", ""), acting_user=request.user
    )
    messages.success(
        request, f"Simulated purchase: {grant.snapshot.name} keeps serving you until {grant.until:%Y-%m-%d}."
    )
    return redirect("portal:billing", org=request.org.slug)

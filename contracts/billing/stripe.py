"""The one seam to the Stripe SDK: `stripe_client()`, deterministic idempotency keys, and the
translation of SDK failures into domain errors. Settings (and tests) point it at another base address."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from typing import Any

import stripe
from django.conf import settings
from django.core.cache import cache

from contracts.errors import ApplicationError, Conflict

logger = logging.getLogger(__name__)


class BillingNotConfigured(Conflict):
    code = "billing_not_configured"


class StripeUnavailable(ApplicationError):
    """Stripe could not be reached, limited the rate, failed, or refused the key: worth retrying."""

    status_code = 502
    code = "stripe_unavailable"


class StripeRefused(ApplicationError):
    """Stripe answered that the request itself is wrong (unknown object, bad parameter): no retry."""

    status_code = 502
    code = "stripe_refused"


def billing_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> stripe.StripeClient:
    """A StripeClient configured from settings; STRIPE_API_BASE points it elsewhere (tests)."""
    if not billing_configured():
        raise BillingNotConfigured(
            "Billing is not configured (no STRIPE_SECRET_KEY).", fields={"billing": "Not configured."}
        )
    base = settings.STRIPE_API_BASE.rstrip("/")
    base_addresses = {"api": base, "connect": base, "files": base} if base else None
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses=base_addresses,
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def idempotency_key(kind: str, *parts: Any, params: dict[str, Any] | None = None) -> str:
    """Deterministic key: the same purchase in the same attempt window sends the same key.

    The parameters' digest is part of it, so a changed request never collides with Stripe's stored
    answer for an older one (Stripe refuses a key reused with different parameters).
    """
    digest = hashlib.sha256(json.dumps(params or {}, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return "vcp-" + "-".join([kind, *(str(p) for p in parts), digest])


def _attempt(at: dt.datetime, seconds: int) -> int:
    return int(at.timestamp()) // seconds


def _call(func, *args, **kwargs):
    try:
        return func(*args, **kwargs)
    except (stripe.InvalidRequestError, stripe.CardError, stripe.IdempotencyError) as exc:
        logger.warning("stripe refused the request: %s", exc)
        raise StripeRefused(
            f"Stripe refused the request: {exc.user_message or type(exc).__name__}.",
            fields={"stripe": type(exc).__name__},
        ) from exc
    except stripe.StripeError as exc:
        logger.warning("stripe call failed: %s", exc)
        raise StripeUnavailable(
            f"Stripe could not complete the request: {exc.user_message or type(exc).__name__}.",
            fields={"stripe": type(exc).__name__},
        ) from exc


PRICE_CACHE_SECONDS = 600


def _money(amount: int, currency: str) -> str:
    # Stripe amounts are in the currency's smallest unit; the zero-decimal currencies are not.
    zero_decimal = {"jpy", "krw", "vnd", "clp", "isk", "ugx", "xaf", "xof"}
    value = amount if currency.lower() in zero_decimal else amount / 100
    return (
        f"{currency.upper()} {value:,.2f}"
        if currency.lower() not in zero_decimal
        else f"{currency.upper()} {value:,}"
    )


def price_text(price_id: str) -> str:
    """The price of a Stripe price id in words ("EUR 120.00 per month"), for the offer and its
    confirmation. The configured text (EXTENDED_SUPPORT_PRICES) wins; otherwise Stripe is asked
    (cached for PRICE_CACHE_SECONDS). Empty when neither knows it: the page then says Stripe shows
    the price before payment."""
    if not price_id:
        return ""
    configured = settings.EXTENDED_SUPPORT_PRICES.get(price_id)
    if configured:
        return configured
    if not billing_configured():
        return ""
    key = f"stripe-price:{price_id}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    try:
        price = _call(stripe_client().v1.prices.retrieve, price_id)
    except ApplicationError:
        return ""  # not cached: the next page view asks again
    text = _money(int(price.get("unit_amount") or 0), price.get("currency") or "usd")
    recurring = price.get("recurring") or {}
    if recurring.get("interval"):
        count = int(recurring.get("interval_count") or 1)
        text += f" per {recurring['interval']}" if count == 1 else f" every {count} {recurring['interval']}s"
    cache.set(key, text, PRICE_CACHE_SECONDS)
    return text


def _ts(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC) if value else None


def subscription_tier(subscription: Any) -> str | None:
    """The tier a subscription's prices name (price metadata `tier`, else STRIPE_PRICE_TIERS)."""
    for item in (subscription.get("items") or {}).get("data") or []:
        price = item.get("price") or {}
        tier = (price.get("metadata") or {}).get("tier") or settings.STRIPE_PRICE_TIERS.get(
            price.get("id", "")
        )
        if tier:
            return str(tier)[:32]
    return None


def subscription_period_end(subscription: Any) -> dt.datetime | None:
    """End of the paid period (on the items since API 2025-03-31, on the subscription before)."""
    ends = [item.get("current_period_end") for item in (subscription.get("items") or {}).get("data") or []]
    ends = [e for e in ends if e]
    if ends:
        return _ts(max(ends))
    return _ts(subscription.get("current_period_end")) or _ts(subscription.get("ended_at"))

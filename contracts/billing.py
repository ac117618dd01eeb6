"""Stripe billing: paid extended support past retirement, contract tiers, verified webhooks.

`stripe_client()` is the one seam to the Stripe SDK: settings (and tests) point it at a base address.
Every create sent to Stripe carries an idempotency key derived from what is being bought and a time
window, so a retried or double-clicked request reuses the object Stripe already made.

Webhook events are verified (Stripe-Signature, tolerance STRIPE_WEBHOOK_TOLERANCE seconds), stored once
by event id, and processed by a Celery task that re-reads the object (checkout session, subscription)
through the client instead of trusting the payload or the order of delivery.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from contracts.ledger import ledger_append
from contracts.models import (
    OPEN_MIGRATION_STATES,
    ContractTerms,
    ExtendedSupport,
    LedgerAction,
    Migration,
    Organization,
    Pin,
    Snapshot,
    SnapshotStatus,
    StripeEvent,
)
from contracts.outbox import organization_mail_send
from contracts.services import resolve_cache_invalidate_pin
from portal.exceptions import ApplicationError, Conflict, NotFound

logger = logging.getLogger(__name__)

PURPOSE_EXTENDED_SUPPORT = "extended-support"
# Statuses at which a pin may buy extended support: announced deprecation, or already retired.
PURCHASABLE_STATUSES = (SnapshotStatus.DEPRECATED, SnapshotStatus.RETIRED)
CHECKOUT_ATTEMPT_SECONDS = 3600  # a Checkout session lives 24 h; a re-click within the hour reuses it
PORTAL_ATTEMPT_SECONDS = 60  # customer-portal links are short-lived
ACTIVE_SUBSCRIPTION_STATUSES = ("active", "trialing", "past_due")
ENDED_SUBSCRIPTION_STATUSES = ("canceled", "incomplete_expired", "unpaid")
CHECKOUT_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
)


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


# --------------------------------------------------------------------------------------------
# The seam
# --------------------------------------------------------------------------------------------


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


def _ts(value: Any) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(int(value), tz=dt.UTC) if value else None


# --------------------------------------------------------------------------------------------
# Reads
# --------------------------------------------------------------------------------------------


def extended_support_active(
    *, org: Organization, snapshot: Snapshot, at: dt.datetime | None = None
) -> ExtendedSupport | None:
    at = at or timezone.now()
    return (
        ExtendedSupport.objects.filter(organization=org, snapshot=snapshot, starts_at__lte=at, until__gt=at)
        .order_by("-until")
        .first()
    )


def extended_support_list(*, org: Organization) -> list[ExtendedSupport]:
    return list(ExtendedSupport.objects.filter(organization=org).select_related("snapshot").order_by("-until"))


@dataclass(frozen=True)
class PurchaseOption:
    """A snapshot one of the organisation's pins is on, deprecated or retired, and whether it can be bought."""

    snapshot: Snapshot
    aliases: tuple[str, ...]
    status: str
    offered: bool
    until: dt.datetime | None
    active_grant: ExtendedSupport | None
    refusal: str

    @property
    def purchasable(self) -> bool:
        return not self.refusal


def _refusal(*, snapshot: Snapshot, status: str, active: ExtendedSupport | None, at: dt.datetime) -> str:
    if status not in PURCHASABLE_STATUSES:
        return f"{snapshot.name} is not deprecated."
    if not snapshot.extended_support_offered or not snapshot.extended_support_price_id:
        return f"Extended support is not offered for {snapshot.name}."
    if not snapshot.extended_support_until or snapshot.extended_support_until <= at:
        return f"Extended support for {snapshot.name} is no longer sold."
    if active is not None:
        return f"Already covered until {active.until:%Y-%m-%d}."
    return ""


def extended_support_options(*, org: Organization, at: dt.datetime | None = None) -> list[PurchaseOption]:
    """Every deprecated or retired snapshot the organisation's pins are on (two queries)."""
    at = at or timezone.now()
    by_snapshot: dict[int, tuple[Snapshot, list[str]]] = {}
    for pin in Pin.objects.filter(organization=org).select_related("snapshot", "alias").order_by("alias__name"):
        if pin.snapshot.status_at(at) in PURCHASABLE_STATUSES:
            by_snapshot.setdefault(pin.snapshot_id, (pin.snapshot, []))[1].append(pin.alias.name)
    grants: dict[int, ExtendedSupport] = {}
    for grant in ExtendedSupport.objects.filter(
        organization=org, snapshot_id__in=list(by_snapshot), starts_at__lte=at, until__gt=at
    ).order_by("until"):
        grants[grant.snapshot_id] = grant
    options = []
    for snapshot_id, (snapshot, aliases) in sorted(by_snapshot.items(), key=lambda item: item[1][0].name):
        status = snapshot.status_at(at)
        active = grants.get(snapshot_id)
        options.append(
            PurchaseOption(
                snapshot=snapshot,
                aliases=tuple(aliases),
                status=status,
                offered=bool(snapshot.extended_support_offered and snapshot.extended_support_price_id),
                until=snapshot.extended_support_until,
                active_grant=active,
                refusal=_refusal(snapshot=snapshot, status=status, active=active, at=at),
            )
        )
    return options


def extended_support_option(*, org: Organization, snapshot_name: str, at: dt.datetime | None = None) -> PurchaseOption:
    """The purchase option for one snapshot; refuses (404/409) when it cannot be bought."""
    at = at or timezone.now()
    snapshot = Snapshot.objects.filter(name=snapshot_name, published_at__isnull=False).first()
    if snapshot is None:
        raise NotFound(f"No snapshot {snapshot_name!r}.", fields={"snapshot": "Unknown snapshot."})
    option = next((o for o in extended_support_options(org=org, at=at) if o.snapshot.pk == snapshot.pk), None)
    if option is None and Pin.objects.filter(organization=org, snapshot=snapshot).exists():
        raise Conflict(
            f"{snapshot.name} is not deprecated: extended support is sold only for deprecated snapshots.",
            fields={"snapshot": "Not deprecated."},
        )
    if option is None:
        raise Conflict(
            f"No pin of {org.slug} is on a deprecated snapshot named {snapshot.name}.",
            fields={"snapshot": "Must be the deprecated snapshot one of your pins is on."},
        )
    if option.refusal:
        raise Conflict(option.refusal, fields={"snapshot": option.refusal})
    return option


# --------------------------------------------------------------------------------------------
# Outgoing: customer, Checkout, customer portal
# --------------------------------------------------------------------------------------------


def stripe_customer_ensure(*, org: Organization, client: stripe.StripeClient | None = None) -> str:
    """The organisation's Stripe customer id, creating the customer once (idempotent per organisation)."""
    org.refresh_from_db(fields=["stripe_customer_id"])
    if org.stripe_customer_id:
        return org.stripe_customer_id
    client = client or stripe_client()
    params = {"name": org.name, "metadata": {"org": org.slug, "org_id": str(org.pk)}}
    customer = _call(
        client.v1.customers.create,
        params=params,
        options={"idempotency_key": idempotency_key("customer", org.pk, params=params)},
    )
    Organization.objects.filter(pk=org.pk, stripe_customer_id="").update(stripe_customer_id=customer.id)
    org.refresh_from_db(fields=["stripe_customer_id"])
    return org.stripe_customer_id


@dataclass(frozen=True)
class CheckoutRedirect:
    url: str
    session_id: str
    idempotency_key: str


def extended_support_checkout_create(
    *,
    org: Organization,
    snapshot_name: str,
    actor: AbstractBaseUser | None,
    success_url: str,
    cancel_url: str,
    at: dt.datetime | None = None,
) -> CheckoutRedirect:
    """A Stripe Checkout session selling extended support of one deprecated snapshot (admins only:
    the caller checks the role). Nothing is written here: the grant comes with the paid webhook."""
    at = at or timezone.now()
    option = extended_support_option(org=org, snapshot_name=snapshot_name, at=at)
    snapshot = option.snapshot
    client = stripe_client()
    customer = stripe_customer_ensure(org=org, client=client)
    metadata = {
        "purpose": PURPOSE_EXTENDED_SUPPORT,
        "org": org.slug,
        "org_id": str(org.pk),
        "snapshot": snapshot.name,
        "until": snapshot.extended_support_until.isoformat(),
        "actor_id": str(getattr(actor, "pk", "") or ""),
        "actor_email": (getattr(actor, "email", "") or getattr(actor, "username", "")) if actor else "",
    }
    params = {
        "mode": "subscription",
        "customer": customer,
        "client_reference_id": f"org-{org.pk}",
        "line_items": [{"price": snapshot.extended_support_price_id, "quantity": 1}],
        "success_url": success_url,
        "cancel_url": cancel_url,
        "metadata": metadata,
        "subscription_data": {"metadata": metadata},
    }
    key = idempotency_key(
        "es-checkout", org.pk, snapshot.pk, _attempt(at, CHECKOUT_ATTEMPT_SECONDS), params=params
    )
    session = _call(client.v1.checkout.sessions.create, params=params, options={"idempotency_key": key})
    return CheckoutRedirect(url=session.url, session_id=session.id, idempotency_key=key)


def billing_portal_session_create(*, org: Organization, return_url: str, at: dt.datetime | None = None) -> str:
    """A link to Stripe's customer portal (invoices, payment methods) for the organisation."""
    at = at or timezone.now()
    client = stripe_client()
    customer = stripe_customer_ensure(org=org, client=client)
    params = {"customer": customer, "return_url": return_url}
    key = idempotency_key("portal", org.pk, _attempt(at, PORTAL_ATTEMPT_SECONDS), params=params)
    session = _call(client.v1.billing_portal.sessions.create, params=params, options={"idempotency_key": key})
    return session.url


# --------------------------------------------------------------------------------------------
# Grants
# --------------------------------------------------------------------------------------------


def _pins_on(org: Organization, snapshot: Snapshot) -> list[Pin]:
    return list(Pin.objects.filter(organization=org, snapshot=snapshot).select_related("alias"))


def _invalidate(org: Organization, snapshot: Snapshot) -> None:
    for pin in _pins_on(org, snapshot):
        resolve_cache_invalidate_pin(org_id=org.pk, alias_name=pin.alias.name)


@transaction.atomic
def extended_support_grant(
    *,
    organization: Organization,
    snapshot: Snapshot,
    until: dt.datetime | None = None,
    checkout_session_id: str = "",
    subscription_id: str = "",
    actor: AbstractBaseUser | None = None,
    actor_email: str | None = None,
    simulated: bool = False,
    at: dt.datetime | None = None,
) -> ExtendedSupport:
    """Keep serving `snapshot` to `organization` until `until` (default: the end of the offer).

    Idempotent per Checkout session. Refused when the offer is withdrawn or `until` lies past the
    snapshot's extended-support end. Writes the grant and a ledger record, and moves the deadline of
    the open migration off that snapshot to the grant's end.
    """
    at = at or timezone.now()
    if checkout_session_id:
        existing = ExtendedSupport.objects.filter(stripe_checkout_session_id=checkout_session_id).first()
        if existing is not None:
            return existing
    snapshot = Snapshot.objects.select_for_update().get(pk=snapshot.pk)
    end = snapshot.extended_support_until
    if not snapshot.extended_support_offered or end is None:
        raise Conflict(
            f"Extended support is not offered for {snapshot.name}.", fields={"snapshot": "Not offered."}
        )
    until = until or end
    if until > end or end <= at:
        raise ApplicationError(
            f"Extended support for {snapshot.name} ends {end.isoformat()}; a grant until "
            f"{until.isoformat()} is past it.",
            fields={"until": f"At most {end.isoformat()} (end of extended support for {snapshot.name})."},
        )
    if until <= at:
        raise ApplicationError("A grant must end in the future.", fields={"until": "Must be after now."})
    try:
        with transaction.atomic():
            grant = ExtendedSupport.objects.create(
                organization=organization,
                snapshot=snapshot,
                starts_at=at,
                until=until,
                stripe_checkout_session_id=checkout_session_id,
                stripe_subscription_id=subscription_id,
            )
    except IntegrityError:
        # A concurrent delivery of the same Checkout session won the insert.
        return ExtendedSupport.objects.get(stripe_checkout_session_id=checkout_session_id)
    ledger_append(
        organization=organization,
        action=LedgerAction.EXTENDED_SUPPORT,
        actor=actor,
        actor_email=actor_email if actor_email else None,
        from_snapshot=snapshot.name,
        details={
            "grant_id": grant.pk,
            "until": until.isoformat(),
            "checkout_session": checkout_session_id,
            "subscription": subscription_id,
            "simulated": simulated,
        },
        at=at,
    )
    for migration in Migration.objects.select_for_update().filter(
        organization=organization, from_snapshot=snapshot, state__in=OPEN_MIGRATION_STATES
    ):
        if migration.deadline is None or migration.deadline < until:
            migration.deadline = until
            migration.save(update_fields=["deadline"])
    _invalidate(organization, snapshot)
    return grant


@transaction.atomic
def extended_support_cancel(
    *, grant: ExtendedSupport, ends_at: dt.datetime, reason: str, at: dt.datetime | None = None
) -> ExtendedSupport:
    """End a grant at `ends_at` (the paid period's end), with a ledger record and a notice."""
    at = at or timezone.now()
    grant = ExtendedSupport.objects.select_for_update().select_related("organization", "snapshot").get(pk=grant.pk)
    if grant.cancelled_at is not None:
        return grant
    grant.until = min(grant.until, ends_at)
    grant.cancelled_at = at
    grant.save(update_fields=["until", "cancelled_at"])
    ledger_append(
        organization=grant.organization,
        action=LedgerAction.EXTENDED_SUPPORT_END,
        from_snapshot=grant.snapshot.name,
        details={
            "grant_id": grant.pk,
            "until": grant.until.isoformat(),
            "reason": reason,
            "subscription": grant.stripe_subscription_id,
        },
        at=at,
    )
    # The open migration's deadline falls back to the new end (never before the retirement date).
    floor = max(grant.until, grant.snapshot.retires_at) if grant.snapshot.retires_at else grant.until
    for migration in Migration.objects.select_for_update().filter(
        organization=grant.organization, from_snapshot=grant.snapshot, state__in=OPEN_MIGRATION_STATES
    ):
        if migration.deadline is None or migration.deadline > floor:
            migration.deadline = floor
            migration.save(update_fields=["deadline"])
    _invalidate(grant.organization, grant.snapshot)
    from contracts import billing_tasks

    grant_id = grant.pk
    transaction.on_commit(lambda: billing_tasks.extended_support_end_notice_send.delay(grant_id))
    return grant


def extended_support_simulate(*, org: Organization, snapshot_name: str, actor: AbstractBaseUser) -> ExtendedSupport:
    """The embedded demo's purchase (no Stripe): same checks, then the same grant service."""
    if billing_configured() or not settings.DEBUG:
        raise Conflict(
            "Simulated purchases exist only in the embedded demo (DEBUG on, no STRIPE_SECRET_KEY).",
            fields={"billing": "Use Checkout."},
        )
    option = extended_support_option(org=org, snapshot_name=snapshot_name)
    return extended_support_grant(organization=org, snapshot=option.snapshot, actor=actor, simulated=True)


# --------------------------------------------------------------------------------------------
# Tiers
# --------------------------------------------------------------------------------------------


def tier_terms(*, tier: str, at: dt.datetime | None = None) -> ContractTerms | None:
    """The newest terms a tier offers (in force now; a future version only when none is)."""
    at = at or timezone.now()
    terms = ContractTerms.objects.filter(tier=tier)
    return terms.filter(effective_at__lte=at).order_by("-effective_at").first() or terms.order_by(
        "effective_at"
    ).first()


@transaction.atomic
def organization_tier_set(
    *, organization: Organization, tier: str, subscription_id: str = "", at: dt.datetime | None = None
) -> Organization:
    """Set the tier and propose its newest terms; they apply only once accepted through the ledger."""
    org = Organization.objects.select_for_update().get(pk=organization.pk)
    terms = tier_terms(tier=tier, at=at)
    offered = terms if terms is not None and terms.pk != org.accepted_terms_id else None
    changed = []
    if org.tier != tier:
        org.tier = tier
        changed.append("tier")
    if org.stripe_subscription_id != subscription_id:
        org.stripe_subscription_id = subscription_id
        changed.append("stripe_subscription_id")
    if org.offered_terms_id != (offered.pk if offered else None) and (offered or "tier" in changed):
        org.offered_terms = offered
        changed.append("offered_terms")
    if changed:
        org.save(update_fields=changed)
    return org


def subscription_tier(subscription: Any) -> str | None:
    """The tier a subscription's prices name (price metadata `tier`, else STRIPE_PRICE_TIERS)."""
    for item in (subscription.get("items") or {}).get("data") or []:
        price = item.get("price") or {}
        tier = (price.get("metadata") or {}).get("tier") or settings.STRIPE_PRICE_TIERS.get(price.get("id", ""))
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


# --------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------


def stripe_event_receive(*, payload: bytes, signature: str | None) -> tuple[StripeEvent, bool]:
    """Verify and store one delivery. Returns (event, created); a replay stores nothing new.

    Missing or wrong signature, a timestamp outside the tolerance, or a body that is not an event:
    ApplicationError (400) and nothing stored.
    """
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        raise ApplicationError(
            "Stripe webhooks are not configured (no STRIPE_WEBHOOK_SECRET).",
            fields={"Stripe-Signature": "Webhooks not configured."},
            code="billing_not_configured",
        )
    if not signature:
        raise ApplicationError(
            "Missing Stripe-Signature header.", fields={"Stripe-Signature": "Required."}, code="bad_signature"
        )
    try:
        text = payload.decode("utf-8")
        stripe.Webhook.construct_event(text, signature, secret, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE)
        data = json.loads(text)
    except stripe.SignatureVerificationError as exc:
        raise ApplicationError(
            f"Stripe-Signature does not verify: {exc.user_message or exc}.",
            fields={"Stripe-Signature": f"Wrong signature or timestamp outside {settings.STRIPE_WEBHOOK_TOLERANCE} s."},
            code="bad_signature",
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApplicationError("The body is not a JSON Stripe event.", fields={"body": "Expected JSON."}) from exc
    event_id, event_type = (data.get("id"), data.get("type")) if isinstance(data, dict) else (None, None)
    if not isinstance(event_id, str) or not event_id or len(event_id) > 200 or not isinstance(event_type, str):
        raise ApplicationError("The body is not a Stripe event.", fields={"body": "Needs string id and type."})
    return _stripe_event_store(event_id=event_id, event_type=event_type[:100], data=data)


@transaction.atomic
def _stripe_event_store(*, event_id: str, event_type: str, data: dict[str, Any]) -> tuple[StripeEvent, bool]:
    from contracts import billing_tasks

    try:
        with transaction.atomic():
            event, created = StripeEvent.objects.get_or_create(
                event_id=event_id, defaults={"type": event_type, "payload": data}
            )
    except IntegrityError:
        event, created = StripeEvent.objects.get(event_id=event_id), False
    if created or event.processed_at is None:
        # A replay of an event still unprocessed (its task lost or failing) queues it again; the
        # processing is idempotent. A replay of a processed event does nothing.
        pk = event.pk
        transaction.on_commit(lambda: billing_tasks.stripe_event_process.delay(pk))
    return event, created


def stripe_event_process(*, event_id: int) -> StripeEvent:
    """Act on one stored event by re-reading its object from Stripe. Idempotent."""
    event = StripeEvent.objects.get(pk=event_id)
    if event.processed_at is not None:
        return event
    obj = ((event.payload or {}).get("data") or {}).get("object") or {}
    object_id = obj.get("id") if isinstance(obj, dict) else None
    error = ""
    try:
        if event.type in CHECKOUT_EVENTS and object_id:
            _on_checkout_session(session_id=object_id)
        elif event.type in SUBSCRIPTION_EVENTS and object_id:
            _on_subscription(subscription_id=object_id)
        # Any other type: acknowledged and ignored.
    except StripeUnavailable as exc:
        StripeEvent.objects.filter(pk=event.pk).update(error=exc.message[:2000])
        raise
    except ApplicationError as exc:
        # A refusal (offer withdrawn, grant past the end): recorded for staff, not retried.
        error = exc.message
        logger.warning("stripe event %s refused: %s", event.event_id, exc.message)
    StripeEvent.objects.filter(pk=event.pk, processed_at__isnull=True).update(
        processed_at=timezone.now(), error=error[:2000]
    )
    event.refresh_from_db()
    return event


def _on_checkout_session(*, session_id: str) -> None:
    client = stripe_client()
    session = _call(client.v1.checkout.sessions.retrieve, session_id)
    metadata = session.get("metadata") or {}
    if metadata.get("purpose") != PURPOSE_EXTENDED_SUPPORT:
        return
    if session.get("status") != "complete" or session.get("payment_status") not in ("paid", "no_payment_required"):
        return  # not paid yet: checkout.session.async_payment_succeeded will come
    org = Organization.objects.filter(pk=metadata.get("org_id") or 0).first()
    snapshot = Snapshot.objects.filter(name=metadata.get("snapshot") or "").first()
    if org is None or snapshot is None:
        raise ApplicationError(
            f"Checkout session {session_id} names an unknown organisation or snapshot.",
            fields={"metadata": "Unknown org_id or snapshot."},
        )
    customer = session.get("customer")
    if customer and not org.stripe_customer_id:
        Organization.objects.filter(pk=org.pk, stripe_customer_id="").update(stripe_customer_id=customer)
    until = dt.datetime.fromisoformat(metadata["until"]) if metadata.get("until") else None
    subscription_id = session.get("subscription") or ""
    if not isinstance(subscription_id, str):
        subscription_id = subscription_id.get("id", "")
    actor = None
    if metadata.get("actor_id"):
        from django.contrib.auth import get_user_model

        actor = get_user_model().objects.filter(pk=metadata["actor_id"]).first()
    grant = extended_support_grant(
        organization=org,
        snapshot=snapshot,
        until=until,
        checkout_session_id=session.id,
        subscription_id=subscription_id,
        actor=actor,
        actor_email=metadata.get("actor_email") or None,
    )
    if subscription_id:
        # The subscription may have been cancelled before this event arrived: read its state now.
        subscription = _call(client.v1.subscriptions.retrieve, subscription_id)
        if subscription.get("status") in ENDED_SUBSCRIPTION_STATUSES:
            _cancel_grants(subscription=subscription, grants=[grant])


def _cancel_grants(*, subscription: Any, grants: list[ExtendedSupport]) -> None:
    ends_at = subscription_period_end(subscription) or timezone.now()
    for grant in grants:
        extended_support_cancel(grant=grant, ends_at=ends_at, reason=f"subscription {subscription.get('id')} ended")


def _on_subscription(*, subscription_id: str) -> None:
    client = stripe_client()
    subscription = _call(client.v1.subscriptions.retrieve, subscription_id)
    status = subscription.get("status")
    metadata = subscription.get("metadata") or {}
    if metadata.get("purpose") == PURPOSE_EXTENDED_SUPPORT:
        if status in ENDED_SUBSCRIPTION_STATUSES:
            grants = list(
                ExtendedSupport.objects.filter(stripe_subscription_id=subscription_id, cancelled_at__isnull=True)
            )
            # No grant yet (deletion delivered before the checkout): the checkout handler re-reads.
            _cancel_grants(subscription=subscription, grants=grants)
        return
    customer = subscription.get("customer")
    customer_id = customer if isinstance(customer, str) else (customer or {}).get("id", "")
    org = Organization.objects.filter(
        Q(stripe_customer_id=customer_id) if customer_id else Q(pk__in=[])
    ).first() or Organization.objects.filter(pk=metadata.get("org_id") or 0).first()
    if org is None:
        raise ApplicationError(
            f"No organisation has Stripe customer {customer_id!r}.", fields={"customer": "Unknown customer."}
        )
    if status in ACTIVE_SUBSCRIPTION_STATUSES:
        tier = subscription_tier(subscription)
        if tier:
            organization_tier_set(organization=org, tier=tier, subscription_id=subscription_id)
    elif status in ENDED_SUBSCRIPTION_STATUSES and org.stripe_subscription_id in ("", subscription_id):
        # Only the organisation's current subscription ending drops the tier; an older one ending
        # after its successor started (or delivered late) changes nothing.
        organization_tier_set(organization=org, tier=settings.STRIPE_DEFAULT_TIER, subscription_id="")


# --------------------------------------------------------------------------------------------
# Notices
# --------------------------------------------------------------------------------------------


def extended_support_end_notice(*, grant: ExtendedSupport) -> None:
    """Tell the organisation its extended support ends (notifications' ad-hoc notice when present)."""
    org, snapshot = grant.organization, grant.snapshot
    subject = f"Extended support for {snapshot.name} ends {grant.until:%Y-%m-%d}"
    body = (
        f"The extended-support subscription of {org.name} for {snapshot.name} was cancelled.\n"
        f"{snapshot.name} keeps serving you until {grant.until:%Y-%m-%d %H:%M} UTC, the end of the paid period.\n"
        f"After that, your pins on it move as your contract and open migrations say.\n"
        f"{settings.SITE_URL}/o/{org.slug}/billing/\n"
    )
    organization_mail_send(
        organization=org,
        kind="extended-support-end",
        subject=subject,
        body=body,
        dedupe_key=f"extended-support-end:{grant.pk}",
    )

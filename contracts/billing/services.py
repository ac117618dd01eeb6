"""Writes of billing: checkout and billing-portal sessions, extended-support grants and their end,
contract tiers, and the processing of verified Stripe events."""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from contracts.audit.services import audit_record
from contracts.billing import tasks as billing_tasks
from contracts.billing.selectors import PURPOSE_EXTENDED_SUPPORT, extended_support_option, tier_terms
from contracts.billing.stripe import (
    StripeUnavailable,
    _attempt,
    _call,
    billing_configured,
    idempotency_key,
    stripe_client,
    subscription_period_end,
    subscription_tier,
)
from contracts.errors import ApplicationError, Conflict
from contracts.gateway.changelog import pin_map_record
from contracts.instants import instant_words
from contracts.ledger.chain import ledger_append
from contracts.models import (
    OPEN_MIGRATION_STATES,
    AuditAction,
    ExtendedSupport,
    LedgerAction,
    Migration,
    Organization,
    Pin,
    PinMapChangeKind,
    Snapshot,
    StripeEvent,
)
from contracts.outbox import organization_mail_send
from contracts.pins.cache import resolve_cache_invalidate_pin

logger = logging.getLogger(__name__)


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
    acting_user: AbstractBaseUser | None,
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
        "actor_id": str(getattr(acting_user, "pk", "") or ""),
        "actor_email": (getattr(acting_user, "email", "") or getattr(acting_user, "username", ""))
        if acting_user
        else "",
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


def billing_portal_session_create(
    *, org: Organization, return_url: str, at: dt.datetime | None = None
) -> str:
    """A link to Stripe's customer portal (invoices, payment methods) for the organisation."""
    at = at or timezone.now()
    client = stripe_client()
    customer = stripe_customer_ensure(org=org, client=client)
    params = {"customer": customer, "return_url": return_url}
    key = idempotency_key("portal", org.pk, _attempt(at, PORTAL_ATTEMPT_SECONDS), params=params)
    session = _call(client.v1.billing_portal.sessions.create, params=params, options={"idempotency_key": key})
    return session.url


def _pins_on(org: Organization, snapshot: Snapshot) -> list[Pin]:
    return list(Pin.objects.filter(organization=org, snapshot=snapshot).select_related("alias"))


def _invalidate(org: Organization, snapshot: Snapshot, *, cause: str) -> None:
    """A grant on `snapshot` started or changed: the pins of `org` on it serve under new terms."""
    for pin in _pins_on(org, snapshot):
        pin_map_record(kind=PinMapChangeKind.PIN, cause=cause, org_slug=org.slug, alias=pin.alias.name)
        resolve_cache_invalidate_pin(org_id=org.pk, alias_name=pin.alias.name)


@transaction.atomic
def extended_support_grant(
    *,
    org: Organization,
    snapshot: Snapshot,
    until: dt.datetime | None = None,
    checkout_session_id: str = "",
    subscription_id: str = "",
    acting_user: AbstractBaseUser | None = None,
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
            f"Extended support for {snapshot.name} ends on {instant_words(end)}; a grant until "
            f"{instant_words(until)} is past it.",
            fields={"until": f"At most {instant_words(end)} (end of extended support for {snapshot.name})."},
        )
    if until <= at:
        raise ApplicationError("A grant must end in the future.", fields={"until": "Must be after now."})
    try:
        with transaction.atomic():
            grant = ExtendedSupport.objects.create(
                organization=org,
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
        org=org,
        action=LedgerAction.EXTENDED_SUPPORT,
        acting_user=acting_user,
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
        organization=org, from_snapshot=snapshot, state__in=OPEN_MIGRATION_STATES
    ):
        if migration.deadline is None or migration.deadline < until:
            migration.deadline = until
            migration.save(update_fields=["deadline"])
    audit_record(
        org=org,
        action=AuditAction.EXTENDED_SUPPORT_BUY,
        target_type="snapshot",
        target_id=snapshot.name,
        target_label=snapshot.name,
        after={"until": until, "grant_id": grant.pk, "simulated": simulated},
        acting_user=acting_user,
        at=at,
    )
    _invalidate(org, snapshot, cause="extended-support-granted")
    return grant


@transaction.atomic
def extended_support_cancel(
    *, grant: ExtendedSupport, ends_at: dt.datetime, reason: str, at: dt.datetime | None = None
) -> ExtendedSupport:
    """End a grant at `ends_at` (the paid period's end), with a ledger record and a notice."""
    at = at or timezone.now()
    grant = (
        ExtendedSupport.objects.select_for_update()
        .select_related("organization", "snapshot")
        .get(pk=grant.pk)
    )
    if grant.cancelled_at is not None:
        return grant
    grant.until = min(grant.until, ends_at)
    grant.cancelled_at = at
    grant.save(update_fields=["until", "cancelled_at"])
    ledger_append(
        org=grant.organization,
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
    _invalidate(grant.organization, grant.snapshot, cause="extended-support-cancelled")

    grant_id = grant.pk
    transaction.on_commit(lambda: billing_tasks.extended_support_end_notice_send.delay(grant_id))
    return grant


def extended_support_simulate(
    *, org: Organization, snapshot_name: str, acting_user: AbstractBaseUser
) -> ExtendedSupport:
    """The embedded demo's purchase (no Stripe): same checks, then the same grant service."""
    if billing_configured() or not settings.DEBUG:
        raise Conflict(
            "Simulated purchases exist only in the embedded demo (DEBUG on, no STRIPE_SECRET_KEY).",
            fields={"billing": "Use Checkout."},
        )
    option = extended_support_option(org=org, snapshot_name=snapshot_name)
    return extended_support_grant(org=org, snapshot=option.snapshot, acting_user=acting_user, simulated=True)


@transaction.atomic
def organization_tier_set(
    *, org: Organization, tier: str, subscription_id: str = "", at: dt.datetime | None = None
) -> Organization:
    """Set the tier and propose its newest terms; they apply only once accepted through the ledger."""
    locked = Organization.objects.select_for_update().get(pk=org.pk)
    terms = tier_terms(tier=tier, at=at)
    offered = terms if terms is not None and terms.pk != locked.accepted_terms_id else None
    changed = []
    if locked.tier != tier:
        locked.tier = tier
        changed.append("tier")
    if locked.stripe_subscription_id != subscription_id:
        locked.stripe_subscription_id = subscription_id
        changed.append("stripe_subscription_id")
    if locked.offered_terms_id != (offered.pk if offered else None) and (offered or "tier" in changed):
        locked.offered_terms = offered
        changed.append("offered_terms")
    if changed:
        locked.save(update_fields=changed)
    return locked


def _signature_timestamp(header: str) -> int | None:
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


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
    tolerance = settings.STRIPE_WEBHOOK_TOLERANCE
    bad_signature = {"Stripe-Signature": f"Wrong signature or timestamp outside {tolerance} s."}
    try:
        text = payload.decode("utf-8")
        # The signature and the past bound; the SDK's construct_event would also build a StripeObject,
        # which fails (500) on a signed body that is not a JSON object: the body is checked below.
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError as exc:
        raise ApplicationError(
            f"Stripe-Signature does not verify: {exc.user_message or exc}.",
            fields=bad_signature,
            code="bad_signature",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ApplicationError("The body is not UTF-8 JSON.", fields={"body": "Expected JSON."}) from exc
    signed_at = _signature_timestamp(signature)
    now = timezone.now().timestamp()
    if signed_at is None or signed_at > now + tolerance:
        # The SDK bounds only the past; a timestamp in the future would let a captured delivery be
        # replayed until then.
        raise ApplicationError(
            f"Stripe-Signature is dated more than {tolerance} s in the future.",
            fields=bad_signature,
            code="bad_signature",
        )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ApplicationError(
            "The body is not a JSON Stripe event.", fields={"body": "Expected JSON."}
        ) from exc
    if not isinstance(data, dict):
        raise ApplicationError("The body is not a Stripe event.", fields={"body": "Expected a JSON object."})
    created = data.get("created")
    if isinstance(created, int) and not isinstance(created, bool) and created > now + tolerance:
        raise ApplicationError(
            f"The event is dated more than {tolerance} s in the future.",
            fields={"created": "in the future"},
        )
    event_id, event_type = (data.get("id"), data.get("type")) if isinstance(data, dict) else (None, None)
    if (
        not isinstance(event_id, str)
        or not event_id
        or len(event_id) > 200
        or not isinstance(event_type, str)
    ):
        raise ApplicationError(
            "The body is not a Stripe event.", fields={"body": "Needs string id and type."}
        )
    return _stripe_event_store(event_id=event_id, event_type=event_type[:100], data=data)


@transaction.atomic
def _stripe_event_store(*, event_id: str, event_type: str, data: dict[str, Any]) -> tuple[StripeEvent, bool]:

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
    if session.get("status") != "complete" or session.get("payment_status") not in (
        "paid",
        "no_payment_required",
    ):
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
        actor = get_user_model().objects.filter(pk=metadata["actor_id"]).first()
    grant = extended_support_grant(
        org=org,
        snapshot=snapshot,
        until=until,
        checkout_session_id=session.id,
        subscription_id=subscription_id,
        acting_user=actor,
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
        extended_support_cancel(
            grant=grant, ends_at=ends_at, reason=f"subscription {subscription.get('id')} ended"
        )


def _on_subscription(*, subscription_id: str) -> None:
    client = stripe_client()
    subscription = _call(client.v1.subscriptions.retrieve, subscription_id)
    status = subscription.get("status")
    metadata = subscription.get("metadata") or {}
    if metadata.get("purpose") == PURPOSE_EXTENDED_SUPPORT:
        if status in ENDED_SUBSCRIPTION_STATUSES:
            grants = list(
                ExtendedSupport.objects.filter(
                    stripe_subscription_id=subscription_id, cancelled_at__isnull=True
                )
            )
            # No grant yet (deletion delivered before the checkout): the checkout handler re-reads.
            _cancel_grants(subscription=subscription, grants=grants)
        return
    customer = subscription.get("customer")
    customer_id = customer if isinstance(customer, str) else (customer or {}).get("id", "")
    org = (
        Organization.objects.filter(
            Q(stripe_customer_id=customer_id) if customer_id else Q(pk__in=[])
        ).first()
        or Organization.objects.filter(pk=metadata.get("org_id") or 0).first()
    )
    if org is None:
        raise ApplicationError(
            f"No organisation has Stripe customer {customer_id!r}.", fields={"customer": "Unknown customer."}
        )
    if status in ACTIVE_SUBSCRIPTION_STATUSES:
        tier = subscription_tier(subscription)
        if tier:
            organization_tier_set(org=org, tier=tier, subscription_id=subscription_id)
    elif status in ENDED_SUBSCRIPTION_STATUSES and org.stripe_subscription_id in ("", subscription_id):
        # Only the organisation's current subscription ending drops the tier; an older one ending
        # after its successor started (or delivered late) changes nothing.
        organization_tier_set(org=org, tier=settings.STRIPE_DEFAULT_TIER, subscription_id="")


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
        org=org,
        kind="extended-support-end",
        subject=subject,
        body=body,
        dedupe_key=f"extended-support-end:{grant.pk}",
    )

"""Celery tasks of Stripe billing. Tasks take ids, load, call a service, own their retries."""

from __future__ import annotations

from celery import shared_task

from contracts.billing import stripe as billing_stripe
from contracts.models import ExtendedSupport


@shared_task(
    bind=True,
    autoretry_for=(billing_stripe.StripeUnavailable,),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=10,
    acks_late=True,
)
def stripe_event_process(self, event_id: int) -> str:
    """Process one stored Stripe event (re-reading its object); retried while Stripe is unreachable."""
    event = _services().stripe_event_process(event_id=event_id)
    return event.error or "ok"


@shared_task(bind=True, autoretry_for=(OSError,), retry_backoff=60, max_retries=5)
def extended_support_end_notice_send(self, grant_id: int) -> None:
    grant = ExtendedSupport.objects.select_related("organization", "snapshot").filter(pk=grant_id).first()
    if grant is not None:
        _services().extended_support_end_notice(grant=grant)


def _services():
    from contracts.billing import services  # noqa: PLC0415 -- a task reaches its service late (services queue tasks)

    return services

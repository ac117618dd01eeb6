"""Demo terms, acceptances, migrations and their ledger records (idempotent; through the services)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from contracts.consent import services
from contracts.models import ContractTerms, Migration, Organization, Pin, Role, Snapshot

TERMS_BODY = """{title}

1. Snapshots. The vendor serves each pinned snapshot unchanged until its retirement date.
2. Notice. A retirement date is announced at least {min_notice_days} days in advance.
3. Migrations. The customer may consent to, defer (up to {max_deferral_days} days after the proposal)
   or decline a proposed migration. An applied migration may be rolled back within
   {rollback_window_hours} hours. Undecided migrations are applied at retirement.
4. Retired artifacts. Artifacts are retained {retention_days} days after retirement to reproduce
   reported bugs. {retired_bug_policy}
5. Records. Every acceptance and decision is recorded in a tamper-evident ledger the customer may
   export and verify.
"""

TERMS = [
    # version, title, tier, effective (days from now), notice, deferral, rollback hours, retention
    ("2025-01", "Standard Version Contract", "standard", -330, 90, 60, 72, 365),
    ("2025-09", "Standard Version Contract", "standard", -60, 90, 60, 72, 365),
    ("enterprise-2025-03", "Enterprise Version Contract", "enterprise", -250, 180, 120, 168, 730),
]
BUG_POLICY = "Bugs on a retired artifact are reproduced while it is retained, then answered from the records."


def _day(days: float) -> dt.datetime:
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    return now + dt.timedelta(days=days)


def _admin(slug: str):
    user = get_user_model().objects.filter(username=f"{slug}-{Role.ADMIN}").first()
    return services.Decider(
        user=user, ip="203.0.113.10", user_agent="seed_demo (Demo browser)", role=Role.ADMIN
    )


@transaction.atomic
def seed_terms_and_migrations() -> list[str]:
    for version, title, tier, effective, notice, deferral, rollback, retention in TERMS:
        if ContractTerms.objects.filter(version=version).exists():
            continue
        params = {
            "min_notice_days": notice,
            "max_deferral_days": deferral,
            "rollback_window_hours": rollback,
            "retention_days": retention,
        }
        services.terms_create(
            version=version,
            title=title,
            tier=tier,
            body=TERMS_BODY.format(
                title=f"{title}, version {version}", retired_bug_policy=BUG_POLICY, **params
            ),
            effective_at=_day(effective),
            retired_bug_policy=BUG_POLICY,
            **params,
        )
    old, current = ContractTerms.objects.get(version="2025-01"), ContractTerms.objects.get(version="2025-09")
    # acme and globex accepted the current standard terms (acme the old ones first); initech only the old.
    for slug, accepted in (("acme", [old, current]), ("globex", [current]), ("initech", [old])):
        org = Organization.objects.filter(slug=slug).first()
        if org is None or org.accepted_terms_id is not None:
            continue
        for terms in accepted:
            services.terms_accept(
                org=org,
                terms=terms,
                decider=_admin(slug),
                confirmed=True,
                at=max(terms.effective_at + dt.timedelta(days=3), _day(-320)),
            )
    acme = Organization.objects.filter(slug="acme").first()
    if acme is None or Migration.objects.filter(organization=acme).exists():
        return []
    admin = _admin("acme")

    def pin(alias: str) -> Pin:
        return Pin.objects.get(organization=acme, alias__name=alias)

    # Proposed: v1-chat leaves the deprecated chat-2025-06-01 for chat-2025-09-29 (deadline: retirement).
    services.migration_propose(
        pin=pin("v1-chat"),
        to_snapshot=Snapshot.objects.get(name="chat-2025-09-29"),
        note="chat-2025-06-01 is deprecated.",
        at=_day(-9),
    )
    # Deferred: v1-code proposed ten days ago, deferred for three weeks.
    code = services.migration_propose(
        pin=pin("v1-code"), to_snapshot=Snapshot.objects.get(name="code-2025-10-05"), at=_day(-10)
    )
    services.migration_defer(migration=code, decider=admin, until=_day(20), at=_day(-6))
    # Applied an hour ago: still inside the 72-hour rollback window.
    embed = services.migration_propose(
        pin=pin("v1-embed"), to_snapshot=Snapshot.objects.get(name="embed-2025-08-20"), at=_day(-4)
    )
    services.migration_consent(migration=embed, decider=admin, at=timezone.now() - dt.timedelta(hours=1))
    return []

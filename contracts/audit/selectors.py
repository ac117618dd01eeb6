"""Reads of the audit log, always scoped to one organisation."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from contracts.models import AuditEntry, Organization


def audit_list(
    *,
    org: Organization,
    action: str | None = None,
    actor: str | None = None,
    target_type: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[AuditEntry]:
    """The organisation's entries, newest first; `actor` matches the actor's label (e-mail, key)."""
    qs = AuditEntry.objects.filter(organization=org)
    if action:
        qs = qs.filter(Q(action=action) | Q(action__startswith=f"{action}."))
    if actor:
        qs = qs.filter(actor_label__icontains=actor)
    if target_type:
        qs = qs.filter(target_type=target_type)
    if since:
        qs = qs.filter(created_at__gte=since)
    if until:
        qs = qs.filter(created_at__lte=until)
    return qs.order_by("-created_at", "-id")


def audit_target_types(*, org: Organization) -> list[str]:
    return list(
        AuditEntry.objects.filter(organization=org)
        .order_by("target_type")
        .values_list("target_type", flat=True)
        .distinct()
    )

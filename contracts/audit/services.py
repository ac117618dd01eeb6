"""Writes of the audit log: one function, called inside the transaction of the change it records."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from contracts.audit.origin import origin_current
from contracts.models import ActorKind, AuditEntry, Organization


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any]:
    """Dates, decimals and UUIDs as the JSON the log stores (and the CSV export prints)."""
    return json.loads(json.dumps(value or {}, cls=DjangoJSONEncoder))


def actor_describe(acting_user: Any) -> tuple[str, Any, str]:
    """(kind, user or None, label) for a user, an API key or SCIM principal, or nobody (system)."""
    if acting_user is None or not getattr(acting_user, "is_authenticated", False):
        return ActorKind.SYSTEM, None, "system"
    kind = getattr(acting_user, "audit_actor_kind", None)
    if kind is not None:
        return kind, None, acting_user.audit_actor_label
    label = getattr(acting_user, "email", "") or acting_user.get_username()
    return ActorKind.USER, acting_user, label


def audit_record(
    *,
    org: Organization | None,
    action: str,
    target_type: str,
    target_id: Any = "",
    target_label: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    acting_user: Any = None,
    at: dt.datetime | None = None,
) -> AuditEntry:
    """Append one entry, inside the caller's transaction (one INSERT: the change and its entry are
    committed or rolled back together). `org` None writes to the vendor-side log (/admin/)."""
    kind, user, label = actor_describe(acting_user)
    origin = origin_current()
    return AuditEntry.objects.create(
        organization=org,
        action=action,
        actor_kind=kind,
        actor_user=user,
        actor_label=label[:254],
        target_type=target_type[:40],
        target_id=str(target_id)[:64],
        target_label=str(target_label)[:300],
        before=_jsonable(before or {}),
        after=_jsonable(after or {}),
        ip=origin.ip,
        user_agent=origin.user_agent,
        created_at=at or timezone.now(),
    )

"""Writes of tenancy: organisation API keys, a person's preferences."""

from __future__ import annotations

import secrets
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from contracts.audit.services import audit_record
from contracts.errors import ApplicationError
from contracts.models import (
    ApiKey,
    ApiKeyScope,
    AuditAction,
    Organization,
    UserPreference,
)
from contracts.pins.cache import resolve_cache_invalidate_all
from contracts.tenancy.auth import api_key_cache_key
from contracts.tenancy.selectors import time_zone_choices


@transaction.atomic
def api_key_create(
    *,
    org: Organization | None,
    name: str,
    acting_user: AbstractBaseUser | None = None,
    scope: str = ApiKeyScope.ORGANIZATION,
    raw_key: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored and shown only now."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApplicationError(
            "A key needs a name of 1 to 100 characters.", fields={"name": "1 to 100 characters."}
        )
    if scope == ApiKeyScope.ORGANIZATION and org is None:
        raise ApplicationError(
            "An organisation key needs an organisation.", fields={"organization": "Required."}
        )
    raw = raw_key or settings.API_KEY_PREFIX + secrets.token_urlsafe(32)
    prefix = raw[: len(settings.API_KEY_PREFIX) + 8]
    key = ApiKey.objects.create(
        organization=org,
        scope=scope,
        name=name,
        prefix=prefix,
        key_hash=ApiKey.hash_key(raw),
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    audit_record(
        org=org,
        action=AuditAction.API_KEY_CREATE,
        target_type="api-key",
        target_id=key.pk,
        target_label=f"{key.name} ({key.prefix}…)",
        after={"name": key.name, "prefix": key.prefix, "scope": key.scope},
        acting_user=acting_user,
    )
    return key, raw


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, acting_user: AbstractBaseUser | None = None) -> ApiKey:
    api_key = ApiKey.objects.select_for_update().get(pk=api_key.pk)
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_record(
            org=api_key.organization,
            action=AuditAction.API_KEY_REVOKE,
            target_type="api-key",
            target_id=api_key.pk,
            target_label=f"{api_key.name} ({api_key.prefix}…)",
            before={"revoked_at": None},
            after={"revoked_at": api_key.revoked_at},
            acting_user=acting_user,
        )
    cache_key = api_key_cache_key(api_key.key_hash)
    cache.delete(cache_key)
    transaction.on_commit(lambda: cache.delete(cache_key))
    # Processes keep copies of key identities keyed by the generation (contracts.hotpath).
    resolve_cache_invalidate_all()
    return api_key


@transaction.atomic
def user_preference_update(
    *, acting_user: AbstractBaseUser, time_zone: str, at: datetime | None = None
) -> UserPreference:
    """Set the time zone the portal shows this person's instants in (one of time_zone_choices())."""
    time_zone = (time_zone or "").strip()
    if time_zone not in time_zone_choices():
        raise ApplicationError(
            f"“{time_zone[:64]}” is not a time zone this portal knows: choose one from the list.",
            fields={"time_zone": "Choose a time zone from the list, such as Europe/Paris or UTC."},
        )
    preference, _ = UserPreference.objects.select_for_update().get_or_create(user=acting_user)
    preference.time_zone = time_zone
    preference.updated_at = at or timezone.now()
    preference.save(update_fields=["time_zone", "updated_at"])
    return preference

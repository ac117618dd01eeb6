"""Reads of tenancy: an organisation's API keys."""

from __future__ import annotations

from contracts.errors import NotFound
from contracts.models import (
    ApiKey,
    ApiKeyScope,
    Organization,
)


def api_key_list(*, org: Organization) -> list[ApiKey]:
    return list(
        ApiKey.objects.filter(organization=org, scope=ApiKeyScope.ORGANIZATION)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )


def api_key_get(*, org: Organization, key_id: int) -> ApiKey:
    key = ApiKey.objects.filter(organization=org, scope=ApiKeyScope.ORGANIZATION, pk=key_id).first()
    if key is None:
        raise NotFound("No such API key in this organisation.")
    return key

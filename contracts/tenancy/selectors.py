"""Reads of tenancy: an organisation's API keys, a person's time zone."""

from __future__ import annotations

import functools
import zoneinfo

from django.contrib.auth.models import AbstractBaseUser

from contracts.errors import NotFound
from contracts.models import (
    ApiKey,
    ApiKeyScope,
    Organization,
    UserPreference,
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


# The IANA zones of the continents and oceans; legacy aliases (US/Eastern, GB, Etc/GMT+3) stay out.
_ZONE_AREAS = (
    "Africa",
    "America",
    "Antarctica",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


@functools.cache
def time_zone_choices() -> tuple[str, ...]:
    """UTC first, then every IANA zone of a continent or ocean, in alphabetical order."""
    zones = sorted(z for z in zoneinfo.available_timezones() if z.split("/", 1)[0] in _ZONE_AREAS)
    return ("UTC", *zones)


def user_time_zone(*, user: AbstractBaseUser) -> str:
    """The IANA name of the zone this person reads instants in: UTC until they choose another."""
    name = UserPreference.objects.filter(user=user).values_list("time_zone", flat=True).first()
    return name if name in time_zone_choices() else "UTC"

"""Demo organisations, logins in every role, and the fixed demo API keys."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from contracts.models import (
    ApiKey,
    Membership,
    Organization,
    Role,
)
from contracts.tenancy import services as tenancy_services

DEMO_PASSWORD = "demo-pass-2025"


DEMO_ORGS = [
    ("acme", "Acme Health"),
    ("globex", "Globex Finance"),
    ("initech", "Initech Legal"),
]


DEMO_KEYS = {slug: f"vcp_demo{slug}{'0' * (32 - len(slug))}" for slug, _ in DEMO_ORGS}


DEMO_STAFF = ("staff", "staff-pass-2025")


@transaction.atomic
def seed_organizations() -> list[str]:
    user_model = get_user_model()
    lines = []
    staff, created = user_model.objects.get_or_create(
        username=DEMO_STAFF[0],
        defaults={"email": "staff@vendor.example", "is_staff": True, "is_superuser": True},
    )
    if created:
        staff.set_password(DEMO_STAFF[1])
        staff.save(update_fields=["password"])
    lines.append(f"login: {DEMO_STAFF[0]} {DEMO_STAFF[1]} org=- role=staff")
    for slug, name in DEMO_ORGS:
        org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
        for role in (Role.ADMIN, Role.MEMBER, Role.LEGAL):
            username = f"{slug}-{role}"
            user, created = user_model.objects.get_or_create(
                username=username, defaults={"email": f"{username}@{slug}.example"}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            Membership.objects.get_or_create(user=user, organization=org, defaults={"role": role})
            lines.append(f"login: {username} {DEMO_PASSWORD} org={slug} role={role}")
    # One user in two organisations, to show the organisation switcher.
    consultant, created = user_model.objects.get_or_create(
        username="consultant", defaults={"email": "consultant@audit.example"}
    )
    if created:
        consultant.set_password(DEMO_PASSWORD)
        consultant.save(update_fields=["password"])
    for slug, role in (("acme", Role.LEGAL), ("globex", Role.ADMIN)):
        Membership.objects.get_or_create(
            user=consultant, organization=Organization.objects.get(slug=slug), defaults={"role": role}
        )
        lines.append(f"login: consultant {DEMO_PASSWORD} org={slug} role={role}")
    return lines


@transaction.atomic
def seed_api_keys() -> list[str]:
    lines = []
    for slug, raw in DEMO_KEYS.items():
        org = Organization.objects.get(slug=slug)
        if not ApiKey.objects.filter(key_hash=ApiKey.hash_key(raw)).exists():
            tenancy_services.api_key_create(org=org, name="Demo key", raw_key=raw)
        lines.append(f"api-key: {raw} org={slug}")
    return lines

"""Demo identity data: one SCIM token per demo organisation (fixed demo data, like the demo API keys),
printed on every run as `scim-token: <token> org=<slug>`."""

from __future__ import annotations

from django.db import transaction

from contracts.identity import provisioning
from contracts.models import Organization, ScimToken, token_hash
from contracts.tenancy.demo import DEMO_ORGS

DEMO_SCIM_TOKENS = {slug: f"scim_demo{slug}{'0' * (32 - len(slug))}" for slug, _ in DEMO_ORGS}


@transaction.atomic
def seed_scim_tokens() -> list[str]:
    lines = []
    for slug, raw in DEMO_SCIM_TOKENS.items():
        org = Organization.objects.get(slug=slug)
        if not ScimToken.objects.filter(token_hash=token_hash(raw)).exists():
            provisioning.scim_token_create(org=org, name="Demo identity provider", raw_token=raw)
        lines.append(f"scim-token: {raw} org={slug}")
    return lines

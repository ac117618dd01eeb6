"""Helpers shared by the bug-report and receipt tests (not collected: no test_ prefix)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from contracts.models import ContractTerms, Organization

POLICY = (
    "Retired artifacts are kept for 365 days after retirement. Within that window we restore the exact "
    "artifact on request and reproduce your report on it within 10 business days. After it, the artifact "
    "is purged and the report is answered with this policy; we re-run it on the replacement instead."
)


def accept_terms(org: Organization, *, version: str = "2025.1", policy: str = POLICY) -> ContractTerms:
    body = f"Version contract terms {version}."
    terms, _ = ContractTerms.objects.get_or_create(
        version=version,
        defaults={
            "title": "Version contract",
            "body": body,
            "body_sha256": ContractTerms.hash_body(body),
            "effective_at": timezone.now() - dt.timedelta(days=400),
            "retired_bug_policy": policy,
        },
    )
    org.accepted_terms = terms
    org.accepted_terms_at = timezone.now()
    org.save(update_fields=["accepted_terms", "accepted_terms_at"])
    return terms

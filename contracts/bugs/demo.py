"""Demo bug reports for acme: one on a retired (but retained) snapshot, found through the alias
history, and one filed with an output receipt. Idempotent: keyed by their demo response ids."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from contracts.bugs.receipts import receipt_issue
from contracts.bugs.services import bug_report_file, bug_report_transition
from contracts.models import BugReport, BugStatus, Organization
from contracts.pins.selectors import resolve

DEMO_REPORTS = ("demo-resp-0001", "demo-resp-0002")


@transaction.atomic
def seed_bug_reports() -> list[str]:
    org = Organization.objects.filter(slug="acme").first()
    if org is None or BugReport.objects.filter(organization=org, response_id__in=DEMO_REPORTS).exists():
        return []
    reporter = get_user_model().objects.filter(username="acme-admin").first()
    staff = get_user_model().objects.filter(is_staff=True).order_by("pk").first()
    noon = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)

    # Seven months ago acme had no pin yet: v1-chat then served chat-2024-11-15, retired since.
    retired = bug_report_file(
        org=org,
        reporter=reporter,
        alias="v1-chat",
        observed_at=noon - dt.timedelta(days=200),
        response_id=DEMO_REPORTS[0],
        prompt="List the contraindications of ibuprofen.",
        output="Ibuprofen has no contraindications.",
        expected="The contraindications from the summary of product characteristics.",
    )
    if staff is not None:
        bug_report_transition(report=retired, status=BugStatus.REPRODUCING, acting_user=staff)

    # Three days ago: the serving layer's receipt names the snapshot exactly.
    at = noon - dt.timedelta(days=3)
    served = resolve(org=org, alias="v1-chat", at=at).snapshot["id"]
    bug_report_file(
        org=org,
        reporter=reporter,
        receipt=receipt_issue(org=org, alias="v1-chat", snapshot=served, response_id=DEMO_REPORTS[1], at=at),
        prompt='Return {"ok": true} as JSON.',
        output='{"ok": true,}',
        expected='{"ok": true}',
    )
    return []

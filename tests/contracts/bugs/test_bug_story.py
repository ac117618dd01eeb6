"""The story of issue #9, end to end over the API.

An output is produced on `v1-chat` at T. The alias moves twice. Six weeks later, when support would
re-run the prompt on today's checkpoint, the customer files a report: it lands on the artifact that
produced the output, shows it retired but retained, goes to the owning team, and carries the written
policy of the customer's contract.
"""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail

from contracts.bugs.receipts import receipt_issue
from contracts.catalog import services
from contracts.models import BugReport, Role, UpgradePolicy
from contracts.pins import selectors
from tests import factories as f
from tests.contracts.bug_support import POLICY, accept_terms

pytestmark = pytest.mark.django_db

T = dt.datetime(2025, 9, 1, 14, 30, tzinfo=dt.UTC)
WEEK = dt.timedelta(weeks=1)


def build_story():
    """The catalog and one customer as they stood before T, then the two moves after it."""
    with time_machine.travel(T - dt.timedelta(days=100), tick=False):
        family = f.FamilyFactory(
            slug="chat",
            name="Chat",
            owning_team="Chat Models Team",
            owning_team_email="chat-team@vendor.example",
        )
        original = f.SnapshotFactory(
            family=family, name="chat-2025-05-01", released_at=T - dt.timedelta(days=120)
        )
        alias = f.make_alias(name="v1-chat", target=original, at=T - dt.timedelta(days=99))
        org = f.OrganizationFactory(slug="acme", name="Acme Health")
        admin = f.MembershipFactory(organization=org, role=Role.ADMIN, user__username="story-admin").user
        accept_terms(org)
        f.make_pin(
            org=org, alias=alias, snapshot=original, policy=UpgradePolicy.FOLLOW, at=T - dt.timedelta(days=90)
        )
        key = f.make_key(org)
    with time_machine.travel(T, tick=False):
        # The serving layer answers a request and embeds a receipt in the response.
        served = selectors.resolve(org=org, alias="v1-chat").snapshot["id"]
        receipt = receipt_issue(org=org, alias="v1-chat", snapshot=served, response_id="resp_T", at=T)
    with time_machine.travel(T + WEEK, tick=False):
        second = f.SnapshotFactory(family=family, name="chat-2025-09-08", released_at=T + WEEK)
        services.alias_move(alias=alias, to_snapshot=second, reason="new default")
        services.snapshot_update(
            snapshot=original,
            data={"deprecated_at": T + WEEK, "retires_at": T + 5 * WEEK, "retention_until": T + 52 * WEEK},
        )
    with time_machine.travel(T + 4 * WEEK, tick=False):
        third = f.SnapshotFactory(family=family, name="chat-2025-09-29", released_at=T + 4 * WEEK)
        services.alias_move(alias=alias, to_snapshot=third, reason="new default")
    return {"org": org, "admin": admin, "key": key, "original": original, "third": third, "receipt": receipt}


def test_report_six_weeks_later_lands_on_the_retired_but_retained_original(
    api, signing_keys, django_capture_on_commit_callbacks
):
    story = build_story()
    with time_machine.travel(T + 6 * WEEK, tick=False):
        # Today the alias serves the third snapshot: re-running the prompt there proves nothing.
        assert selectors.resolve(org=story["org"], alias="v1-chat").snapshot["id"] == story["third"].name
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(
                "/api/v1/bug-reports/",
                {
                    "alias": "v1-chat",
                    "observed_at": T.isoformat(),
                    "prompt": "Dose for a 20 kg child?",
                    "output": "Take 2 g.",
                    "expected": "A weight-based dose with a source.",
                },
                key=story["key"],
            )
        assert response.status_code == 201, response.json()
        report = response.json()
        assert report["snapshot"]["id"] == story["original"].name
        assert report["snapshot"]["status"] == "retired"
        assert report["reproducibility"]["code"] == "on-request"
        assert report["reproducibility"]["label"] == "Reproducible on request"
        assert report["owning_team"] == "Chat Models Team"
        assert report["policy"]["text"] == POLICY
        assert [m.to for m in mail.outbox] == [["chat-team@vendor.example"]]
        assert story["original"].name in mail.outbox[0].body

        # The receipt returned with the response says the same, exactly, and is verified.
        verified = api.post("/api/v1/receipts/verify/", {"receipt": story["receipt"]}, key=story["key"])
        assert verified.status_code == 200
        assert verified.json()["snapshot"]["id"] == story["original"].name
        assert verified.json()["snapshot"]["status"] == "retired"
        by_receipt = api.post("/api/v1/bug-reports/", {"receipt": story["receipt"]}, key=story["key"]).json()
        assert by_receipt["snapshot"]["id"] == story["original"].name
        assert by_receipt["resolved_by"] == "receipt"

        page = api.get(report["url"])  # no session: the page asks for a login
        assert page.status_code == 302
    assert BugReport.objects.count() == 2


def test_the_same_report_after_retention_says_the_artifact_is_gone(api, signing_keys):
    story = build_story()
    with time_machine.travel(T + 60 * WEEK, tick=False):
        response = api.post(
            "/api/v1/bug-reports/", {"alias": "v1-chat", "observed_at": T.isoformat()}, key=story["key"]
        )
    assert response.status_code == 201
    assert response.json()["snapshot"]["id"] == story["original"].name
    assert response.json()["reproducibility"]["code"] == "gone"
    assert response.json()["policy"]["text"] == POLICY

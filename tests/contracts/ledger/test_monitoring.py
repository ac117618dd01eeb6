"""Continuous verification: the daily task records every organisation's result and mails staff once
per broken state, again only for a new break or after the chain was repaired and broke again."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from django.utils import timezone

from contracts.ledger import monitoring
from contracts.ledger.tasks import ledger_verify_daily
from contracts.models import LedgerVerification
from tests.contracts.ledger_helpers import append_records, tampering

pytestmark = pytest.mark.django_db


def forge(record, value: str = "forged") -> None:
    with tampering() as cursor:
        cursor.execute(
            "UPDATE contracts_consentrecord SET actor_email = %s WHERE id = %s", [value, record.pk]
        )


def test_the_daily_task_records_an_intact_result_for_every_organisation_and_mails_nobody(world, staff):
    append_records(world.org, 3)
    assert ledger_verify_daily.delay().get() == {"intact": 2, "broken": 0, "alerted": 0}
    rows = {v.organization.slug: v for v in LedgerVerification.objects.select_related("organization")}
    assert set(rows) == {"acme", "globex"}
    assert rows["acme"].intact and rows["acme"].records == 3 and rows["acme"].head_seq == 3
    assert rows["globex"].intact and rows["globex"].records == 0
    assert mail.outbox == []


def test_a_broken_chain_mails_staff_once_however_many_days_it_stays_broken(world, staff, settings):
    settings.OPS_ALERT_EMAILS = ["oncall@vendor.example"]
    records = append_records(world.org, 4)
    forge(records[1])
    day = timezone.now()
    for n in range(3):
        counts = monitoring.ledger_verify_all(at=day + dt.timedelta(days=n))
        append_records(world.org, 1)  # the ledger keeps growing behind the break
        assert counts["broken"] == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert sorted(message.to) == ["oncall@vendor.example", "vendor-staff@example.com"]
    assert "acme" in message.subject and "#2" in message.subject
    assert "altered" in message.body and "verify_ledger --org acme" in message.body
    row = LedgerVerification.objects.get(organization=world.org)
    assert not row.intact and row.broken_seq == 2 and row.alerted_at == day
    assert LedgerVerification.objects.get(organization=world.other_org).intact


def test_a_different_break_is_a_new_failure_and_is_mailed(world, staff):
    records = append_records(world.org, 4)
    forge(records[2])
    monitoring.ledger_verify_all()
    forge(records[0])  # an earlier record altered too: the first broken record moves
    monitoring.ledger_verify_all()
    assert [m.subject.split("record ")[-1] for m in mail.outbox] == ["#3", "#1"]


def test_a_repaired_chain_that_breaks_again_is_mailed_again(world, staff):
    records = append_records(world.org, 3)
    original = records[1].actor_email
    forge(records[1])
    monitoring.ledger_verify_all()
    forge(records[1], original)  # restored from backup
    monitoring.ledger_verify_all()
    row = LedgerVerification.objects.get(organization=world.org)
    assert row.intact and row.alerted_fingerprint == "" and row.failure_fingerprint == ""
    forge(records[1])
    monitoring.ledger_verify_all()
    assert len(mail.outbox) == 2


def test_a_failed_mail_is_retried_by_the_next_run_and_then_sent_once(world, staff, settings):
    records = append_records(world.org, 2)
    forge(records[0])
    settings.EMAIL_BACKEND = "tests.contracts.ledger.test_monitoring.RefusingBackend"
    assert monitoring.ledger_verify_all() == {"intact": 1, "broken": 1, "alerted": 0}
    assert LedgerVerification.objects.get(organization=world.org).alerted_fingerprint == ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monitoring.ledger_verify_all()
    monitoring.ledger_verify_all()
    assert len(mail.outbox) == 1


class RefusingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("smtp refused")


def test_staff_read_the_last_verification_in_the_admin_and_cannot_edit_it(world, staff, client):
    records = append_records(world.org, 2)
    forge(records[1])
    monitoring.ledger_verify_all()
    staff.is_superuser = True
    staff.save(update_fields=["is_superuser"])
    client.force_login(staff)
    listing = client.get("/admin/contracts/ledgerverification/")
    assert listing.status_code == 200 and str(world.org).encode() in listing.content
    row = LedgerVerification.objects.get(organization=world.org)
    change = client.get(f"/admin/contracts/ledgerverification/{row.pk}/change/")
    assert change.status_code == 200 and b"altered" in change.content
    assert (
        client.post(f"/admin/contracts/ledgerverification/{row.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert LedgerVerification.objects.filter(pk=row.pk).exists()

"""The consent ledger: chaining, the published hash scheme, append-only guards and verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from django.core.management import call_command
from django.db import IntegrityError, InternalError, connection, transaction

from contracts.ledger.chain import GENESIS_HASH, record_body
from contracts.ledger.verify import ledger_verify
from contracts.models import AppendOnlyError, ConsentRecord, LedgerHead
from tests.conftest import requires_postgres
from tests.contracts.ledger_helpers import accept, append_records, decider, make_terms, propose, tampering


@pytest.mark.django_db
def test_records_form_one_chain_per_organisation(world):
    ours = append_records(world.org, 3)
    theirs = append_records(world.other_org, 2)
    assert [r.seq for r in ours] == [1, 2, 3]
    assert [r.seq for r in theirs] == [1, 2]
    assert ours[0].prev_hash == GENESIS_HASH == theirs[0].prev_hash
    assert [r.prev_hash for r in ours[1:]] == [r.hash for r in ours[:-1]]
    head = LedgerHead.objects.get(organization=world.org)
    assert (head.seq, head.head_hash) == (3, ours[-1].hash)


@pytest.mark.django_db
def test_an_auditor_can_recompute_a_hash_from_the_published_scheme(world):
    """README: sha256( canonical JSON of the 14 fields, sorted keys, no spaces, UTF-8 ) + prev hash hex."""
    accept(world.org, make_terms("2025-09"), world.admin)
    from contracts.consent import services

    record = services.migration_consent(migration=propose(world), decider=decider(world.admin))
    body = {
        "organization": "acme",
        "seq": record.seq,
        "action": "consent",
        "actor_email": world.admin.email,
        "migration_id": record.migration_id,
        "from_snapshot": world.old.name,
        "to_snapshot": world.current.name,
        "terms_version": "2025-09",
        "terms_sha256": record.terms_sha256,
        "diff_sha256": record.diff_sha256,
        "details": record.details,
        "ip": "198.51.100.7",
        "user_agent": "pytest-agent/1.0",
        "created_at": record.created_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
    }
    assert record_body(record) == body
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert hashlib.sha256(canonical + record.prev_hash.encode("ascii")).hexdigest() == record.hash


@pytest.mark.django_db
def test_models_refuse_to_update_or_delete_records_on_any_database(world):
    record = append_records(world.org, 1)[0]
    record.actor_email = "someone-else@x.example"
    with pytest.raises(AppendOnlyError):
        record.save()
    with pytest.raises(AppendOnlyError):
        record.delete()
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.filter(pk=record.pk).update(actor_email="x")
    with pytest.raises(AppendOnlyError):
        ConsentRecord.objects.filter(pk=record.pk).delete()
    assert ConsentRecord.objects.get(pk=record.pk).actor_email == "a0@x.example"


@requires_postgres
@pytest.mark.django_db
def test_postgresql_refuses_raw_sql_update_and_delete_of_ledger_rows(world):
    record = append_records(world.org, 1)[0]
    for sql in (
        "UPDATE contracts_consentrecord SET actor_email = 'forged@x.example' WHERE id = %s",
        "DELETE FROM contracts_consentrecord WHERE id = %s",
    ):
        with (
            pytest.raises((IntegrityError, InternalError), match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [record.pk])
    assert ConsentRecord.objects.get(pk=record.pk).actor_email == "a0@x.example"


@pytest.mark.django_db
def test_verify_reports_an_intact_chain_with_its_head(world):
    records = append_records(world.org, 4)
    result = ledger_verify(org=world.org)
    assert result.intact
    assert (result.records, result.head_seq, result.head_hash) == (4, 4, records[-1].hash)


@pytest.mark.django_db
def test_verify_names_the_first_altered_record(world):
    records = append_records(world.org, 4)
    with tampering() as cursor:
        cursor.execute(
            "UPDATE contracts_consentrecord SET actor_email = 'forged' WHERE id = %s", [records[1].pk]
        )
    result = ledger_verify(org=world.org)
    assert not result.intact
    assert result.broken_seq == 2
    assert "altered" in result.reason


@pytest.mark.django_db
def test_verify_detects_a_removed_last_record_through_the_chain_head(world):
    records = append_records(world.org, 3)
    with tampering() as cursor:
        cursor.execute("DELETE FROM contracts_consentrecord WHERE id = %s", [records[-1].pk])
    result = ledger_verify(org=world.org)
    assert not result.intact
    assert result.broken_seq == 3
    assert "removed" in result.reason


@pytest.mark.django_db
def test_verify_ledger_command_exits_0_and_prints_each_chain_head(world, capsys):
    records = append_records(world.org, 2)
    call_command("verify_ledger")
    out = capsys.readouterr().out
    assert f"intact  org=acme records=2 head=#2 {records[-1].hash}" in out
    assert "intact  org=globex records=0 head=#0" in out


@pytest.mark.django_db
def test_verify_ledger_command_exits_1_naming_the_first_broken_record(world, capsys):
    records = append_records(world.org, 3)
    with tampering() as cursor:
        cursor.execute("UPDATE contracts_consentrecord SET details = '{}' WHERE id = %s", [records[0].pk])
    with pytest.raises(SystemExit) as exited:
        call_command("verify_ledger", "--org", "acme")
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "BROKEN  org=acme first broken record=#1" in out
    assert "globex" not in out


@pytest.mark.django_db
def test_verify_ledger_command_refuses_an_unknown_organisation(world):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as refused:
        call_command("verify_ledger", "--org", "nope")
    assert refused.value.returncode == 2

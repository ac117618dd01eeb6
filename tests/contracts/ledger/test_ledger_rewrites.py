"""History rewrites by someone who can write the database but not read the signing key (issue #15,
item 5): each one is reported by ledger_verify, verify_ledger and GET consents/verify/, naming the
first broken record and the checkpoint the database contradicts. On PostgreSQL the same attacks run
with the triggers switched off (tampering()), and the triggers themselves refuse them otherwise.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import IntegrityError, InternalError, connection, transaction

from contracts.ledger.chain import compute_hash, record_body
from contracts.ledger.checkpoints import checkpoint_as_dict, checkpoint_create
from contracts.ledger.verify import ledger_verify
from contracts.models import ConsentRecord, LedgerCheckpoint, LedgerHead
from tests.conftest import requires_postgres
from tests.contracts.ledger_helpers import append_records, tampering

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keys(signing_keys):
    """This test's own signing keys (tests/conftest.py)."""


def append(org, n: int) -> list[ConsentRecord]:
    return append_records(org, n)


@pytest.fixture
def history(world):
    """Records #1-#6 of acme, with signed checkpoints at #3 and #5."""
    append(world.org, 3)
    first = checkpoint_create(org=world.org)
    append(world.org, 2)
    second = checkpoint_create(org=world.org)
    append(world.org, 1)
    assert ledger_verify(org=world.org).intact and ledger_verify(org=world.org).checkpoints == 2
    return first, second


def rewrite_from(org, seq: int, *, actor_email: str) -> None:
    """Edit record #seq and recompute every later hash and link and the chain head, as an attacker
    with database rights would (the head's signature cannot be recomputed without the key)."""
    records = list(ConsentRecord.objects.filter(organization=org, seq__gte=seq).order_by("seq"))
    prev = records[0].prev_hash
    with tampering() as cursor:
        for record in records:
            if record.seq == seq:
                record.actor_email = actor_email
            body = record_body(record, org_slug=org.slug)
            new_hash = compute_hash(body, prev)
            cursor.execute(
                "UPDATE contracts_consentrecord SET actor_email = %s, prev_hash = %s, hash = %s WHERE id = %s",
                [record.actor_email, prev, new_hash, record.pk],
            )
            prev = new_hash
        cursor.execute(
            "UPDATE contracts_ledgerhead SET head_hash = %s WHERE organization_id = %s", [prev, org.pk]
        )


def test_a_rewrite_with_every_later_hash_recomputed_names_the_contradicted_checkpoint(world, history):
    first, second = history
    rewrite_from(world.org, 4, actor_email="forged@x.example")
    result = ledger_verify(org=world.org)
    assert not result.intact
    assert result.contradicted_checkpoint == second.seq == 5
    assert result.broken_seq == 4 and result.head_seq == first.seq  # the last record still signed
    assert "contradicts the signed checkpoint" in result.reason
    assert any("does not carry a valid vendor signature" in problem for problem in result.problems)


def test_a_rewrite_after_the_last_checkpoint_is_caught_by_the_head_signature(world, history):
    rewrite_from(world.org, 6, actor_email="forged@x.example")
    result = ledger_verify(org=world.org)
    assert not result.intact and result.contradicted_checkpoint is None
    assert result.broken_seq == 6 and "does not carry a valid vendor signature" in result.reason


def test_deleting_the_checkpoints_does_not_let_a_rewrite_pass(world, history):
    rewrite_from(world.org, 2, actor_email="forged@x.example")
    with tampering() as cursor:
        cursor.execute("DELETE FROM contracts_ledgercheckpoint WHERE organization_id = %s", [world.org.pk])
    result = ledger_verify(org=world.org)
    assert not result.intact and result.broken_seq == 1
    assert "does not carry a valid vendor signature" in result.reason


def test_a_deleted_checkpoint_row_alone_is_reported(world, history):
    _, second = history
    with tampering() as cursor:
        cursor.execute("DELETE FROM contracts_ledgercheckpoint WHERE id = %s", [second.pk])
    result = ledger_verify(org=world.org)
    assert not result.intact
    assert "counts 2 checkpoint(s), the last at #5, but the database holds 1" in result.reason


def test_an_altered_checkpoint_row_is_reported_as_contradicted(world, history):
    first, _ = history
    with tampering() as cursor:
        cursor.execute(
            "UPDATE contracts_ledgercheckpoint SET head_hash = %s WHERE id = %s", ["f" * 64, first.pk]
        )
    result = ledger_verify(org=world.org)
    assert not result.intact and result.contradicted_checkpoint == 3
    assert "checkpoint #3" in result.reason and "does not verify" in result.reason


def test_dropping_the_last_records_and_rewinding_the_head_is_reported(world, history):
    kept = ConsentRecord.objects.get(organization=world.org, seq=4)
    with tampering() as cursor:
        cursor.execute(
            "DELETE FROM contracts_consentrecord WHERE organization_id = %s AND seq > 4", [world.org.pk]
        )
        cursor.execute(
            "UPDATE contracts_ledgerhead SET seq = 4, head_hash = %s WHERE organization_id = %s",
            [kept.hash, world.org.pk],
        )
    result = ledger_verify(org=world.org)
    assert not result.intact and result.contradicted_checkpoint == 5
    assert "no longer holds" in result.reason


def test_the_verify_command_and_endpoint_name_the_contradicted_checkpoint(world, history, api, capsys):
    rewrite_from(world.org, 4, actor_email="forged@x.example")
    with pytest.raises(SystemExit) as exited:
        call_command("verify_ledger", "--org", "acme")
    assert exited.value.code == 1
    out = capsys.readouterr().out
    assert "BROKEN  org=acme first broken record=#4 contradicted checkpoint=#5" in out
    assert "also: the chain head (#6) does not carry a valid vendor signature" in out
    body = api.get("/api/v1/consents/verify/", key=world.key).json()
    assert (body["intact"], body["broken_seq"], body["contradicted_checkpoint"]) == (False, 4, 5)
    assert len(body["problems"]) >= 2


def test_a_replayed_older_state_is_caught_by_the_organisations_own_checkpoint(world, tmp_path, capsys):
    """Replaying records, checkpoints and head of an older backup whole contradicts nothing in the
    database; the checkpoint the organisation was e-mailed since does (verify_export --checkpoint)."""
    append(world.org, 3)
    checkpoint_create(org=world.org)
    backup = LedgerHead.objects.values(
        "seq", "head_hash", "checkpoints", "last_checkpoint_seq", "key_id", "signature"
    ).get(organization=world.org)
    append(world.org, 2)
    later = checkpoint_create(org=world.org)
    mailed = tmp_path / "checkpoint-mail.txt"
    mailed.write_text(
        "Subject: Signed ledger checkpoint\n\nKeep this message.\n\n"
        + json.dumps(checkpoint_as_dict(later))
        + "\n"
    )
    with tampering() as cursor:
        cursor.execute(
            "DELETE FROM contracts_consentrecord WHERE organization_id = %s AND seq > 3", [world.org.pk]
        )
        cursor.execute("DELETE FROM contracts_ledgercheckpoint WHERE id = %s", [later.pk])
        cursor.execute(
            "UPDATE contracts_ledgerhead SET seq = %s, head_hash = %s, checkpoints = %s, last_checkpoint_seq = %s, "
            "key_id = %s, signature = %s WHERE organization_id = %s",
            [*backup.values(), world.org.pk],
        )
    assert ledger_verify(org=world.org).intact  # a genuine older state: the database cannot tell
    bundle = tmp_path / "acme.zip"
    call_command("export_consents", "--org", "acme", "--format", "bundle", "--out", str(bundle))
    call_command("verify_export", str(bundle))  # the bundle alone is consistent
    with pytest.raises(SystemExit) as exited:
        call_command("verify_export", str(bundle), "--checkpoint", str(mailed))
    assert exited.value.code == 1
    assert "your checkpoint acme#5: the chain head in this bundle is #3" in capsys.readouterr().err


def test_the_organisations_own_checkpoint_that_matches_passes(world, tmp_path, capsys):
    append(world.org, 3)
    own = tmp_path / "cp.json"
    own.write_text(json.dumps([checkpoint_as_dict(checkpoint_create(org=world.org))]))
    bundle = tmp_path / "acme.zip"
    call_command("export_consents", "--org", "acme", "--format", "bundle", "--out", str(bundle))
    call_command("verify_export", str(bundle), "--checkpoint", str(own))
    assert "OK:" in capsys.readouterr().out


def test_the_models_refuse_to_change_or_delete_a_checkpoint(world, history):
    from contracts.models import AppendOnlyError

    first, _ = history
    with pytest.raises(AppendOnlyError):
        LedgerCheckpoint.objects.filter(pk=first.pk).delete()
    with pytest.raises(AppendOnlyError):
        first.delete()


@requires_postgres
@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM contracts_ledgercheckpoint WHERE organization_id = %s",
        "UPDATE contracts_ledgercheckpoint SET head_hash = repeat('f', 64) WHERE organization_id = %s",
        "UPDATE contracts_ledgerhead SET seq = seq - 1 WHERE organization_id = %s",
        "UPDATE contracts_ledgerhead SET head_hash = repeat('f', 64) WHERE organization_id = %s",
        "UPDATE contracts_ledgerhead SET checkpoints = 0 WHERE organization_id = %s",
        "DELETE FROM contracts_ledgerhead WHERE organization_id = %s",
    ],
)
def test_postgresql_refuses_deleting_checkpoints_and_rewinding_the_head(world, history, statement):
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [world.org.pk])
    assert ledger_verify(org=world.org).intact

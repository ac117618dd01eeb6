"""Signed daily checkpoints: created only when there is news, verifiable, delivered to legal."""

from __future__ import annotations

import pytest
from django.core import mail

from contracts import signing
from contracts.ledger import exports
from contracts.ledger import tasks as ledger_tasks
from contracts.ledger.chain import ledger_append
from contracts.ledger.checkpoints import (
    checkpoint_as_dict,
    checkpoint_create,
    checkpoint_payload,
    checkpoint_verify,
    checkpoints_create_due,
)
from contracts.ledger.verify_bundle_standalone import load_keys, signature_ok
from contracts.models import LedgerCheckpoint, LedgerHead
from tests.contracts.export_helpers import seed_ledger

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_keys")]


def test_daily_run_signs_each_organisation_with_new_records_once(world, django_capture_on_commit_callbacks):
    seed_ledger(world, n=3)
    with django_capture_on_commit_callbacks(execute=True):
        assert ledger_tasks.ledger_checkpoints_daily() == 2
    acme = LedgerCheckpoint.objects.get(organization=world.org)
    head = LedgerHead.objects.get(organization=world.org)
    assert (acme.seq, acme.head_hash) == (head.seq, head.head_hash)
    assert checkpoint_verify(acme)
    with django_capture_on_commit_callbacks(execute=True):
        assert ledger_tasks.ledger_checkpoints_daily() == 0  # nothing new
        ledger_append(org=world.org, action="consent")
        assert [cp.seq for cp in checkpoints_create_due()] == [4]


def test_organisation_without_records_gets_no_checkpoint(world):
    assert checkpoint_create(org=world.org) is None
    assert not LedgerCheckpoint.objects.exists()


def test_checkpoint_is_emailed_to_the_legal_members_only(world, django_capture_on_commit_callbacks):
    seed_ledger(world, n=2)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint = checkpoint_create(org=world.org)
    sent = [m for m in mail.outbox if "acme" in m.subject]
    assert len(sent) == 1
    assert sent[0].to == [world.legal.email]
    assert checkpoint.head_hash in sent[0].body and checkpoint.signature in sent[0].body


def test_checkpoint_signature_verifies_offline_and_fails_when_changed(world):
    seed_ledger(world, n=2)
    checkpoint = checkpoint_create(org=world.org)
    data = checkpoint_as_dict(checkpoint)
    keys = load_keys(exports.public_keys_pem())
    payload = checkpoint_payload(
        org_slug=data["organization"],
        seq=data["seq"],
        head_hash=data["head_hash"],
        created_at=data["created_at"],
    )
    assert signature_ok(keys, data["key_id"], payload, data["signature"])
    forged = checkpoint_payload(
        org_slug="acme", seq=data["seq"], head_hash="0" * 64, created_at=data["created_at"]
    )
    assert not signature_ok(keys, data["key_id"], forged, data["signature"])


def test_checkpoints_survive_key_rotation(world):
    seed_ledger(world, n=2)
    old = checkpoint_create(org=world.org)
    signing.rotate("consent")
    ledger_append(org=world.org, action="consent")
    new = checkpoint_create(org=world.org)
    assert old.key_id != new.key_id
    assert checkpoint_verify(old) and checkpoint_verify(new)

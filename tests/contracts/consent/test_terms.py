from __future__ import annotations

import hashlib

import pytest

from contracts.consent import selectors, services
from contracts.errors import ApplicationError, Conflict, Forbidden
from contracts.ledger.verify import ledger_verify
from contracts.models import ConsentRecord, ContractTerms, LedgerAction, Role
from tests import factories as f
from tests.contracts.ledger_helpers import accept, decider, make_terms


@pytest.mark.django_db
def test_terms_create_computes_the_body_sha256_and_offers_the_version_to_the_tier():
    org = f.OrganizationFactory(slug="acme")
    enterprise = f.OrganizationFactory(slug="bigco", tier="enterprise")
    terms = make_terms("2025-09")
    assert terms.body_sha256 == hashlib.sha256(terms.body.encode()).hexdigest()
    org.refresh_from_db()
    enterprise.refresh_from_db()
    assert org.offered_terms == terms
    assert enterprise.offered_terms is None


@pytest.mark.django_db
def test_duplicate_terms_version_is_refused():
    make_terms("2025-09")
    with pytest.raises(Conflict):
        make_terms("2025-09")
    assert ContractTerms.objects.count() == 1


@pytest.mark.django_db
def test_current_terms_are_the_newest_in_effect_for_the_tier():
    make_terms("2025-01", effective_at=f.days(-300))
    current = make_terms("2025-09", effective_at=f.days(-10))
    make_terms("2026-01", effective_at=f.days(30))
    make_terms("ent-1", tier="enterprise", effective_at=f.days(-1))
    assert selectors.terms_current(tier="standard") == current


@pytest.mark.django_db
def test_accepting_terms_writes_one_accept_terms_record_and_sets_the_organisation(world):
    terms = make_terms("2025-09")
    record = accept(world.org, terms, world.admin)
    world.org.refresh_from_db()
    assert world.org.accepted_terms == terms
    assert world.org.accepted_terms_at == record.created_at
    assert world.org.offered_terms is None
    assert record.action == LedgerAction.ACCEPT_TERMS
    assert (record.terms_version, record.terms_sha256) == ("2025-09", terms.body_sha256)
    assert (record.actor, record.actor_email) == (world.admin, world.admin.email)
    assert (record.ip, record.user_agent) == ("198.51.100.7", "pytest-agent/1.0")
    assert record.seq == 1
    assert ledger_verify(org=world.org).intact


@pytest.mark.django_db
def test_accepting_without_the_checkbox_is_refused_and_writes_nothing(world):
    terms = make_terms("2025-09")
    with pytest.raises(ApplicationError) as refused:
        services.terms_accept(org=world.org, terms=terms, decider=decider(world.admin), confirmed=False)
    assert "confirm" in refused.value.fields
    world.org.refresh_from_db()
    assert world.org.accepted_terms is None
    assert ConsentRecord.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("role", [Role.MEMBER, Role.LEGAL])
def test_only_admins_accept_terms(world, role):
    terms = make_terms("2025-09")
    with pytest.raises(Forbidden):
        services.terms_accept(
            org=world.org, terms=terms, decider=decider(world.member, role=role), confirmed=True
        )
    assert ConsentRecord.objects.count() == 0


@pytest.mark.django_db
def test_terms_of_another_tier_or_not_yet_effective_cannot_be_accepted(world):
    enterprise = make_terms("ent-1", tier="enterprise")
    future = make_terms("2026-01", effective_at=f.days(20))
    for terms in (enterprise, future):
        with pytest.raises(ApplicationError) as refused:
            accept(world.org, terms, world.admin)
        assert "terms" in refused.value.fields
    assert ConsentRecord.objects.count() == 0


@pytest.mark.django_db
def test_accepting_the_same_version_twice_is_a_conflict(world):
    terms = make_terms("2025-09")
    accept(world.org, terms, world.admin)
    with pytest.raises(Conflict):
        accept(world.org, terms, world.admin)
    assert ConsentRecord.objects.filter(organization=world.org).count() == 1


@pytest.mark.django_db
def test_terms_whose_body_no_longer_matches_the_hash_are_not_accepted(world):
    terms = make_terms("2025-09")
    ContractTerms.objects.filter(pk=terms.pk).update(body="Tampered terms.")
    with pytest.raises(Conflict):
        accept(world.org, terms, world.admin)
    assert ConsentRecord.objects.count() == 0


@pytest.mark.django_db
def test_pending_terms_until_the_current_version_is_accepted(world):
    old = make_terms("2025-01", effective_at=f.days(-300))
    accept(world.org, old, world.admin)
    current = make_terms("2025-09", effective_at=f.days(-1))
    world.org.refresh_from_db()
    assert selectors.terms_pending(org=world.org) == current
    accept(world.org, current, world.admin)
    world.org.refresh_from_db()
    assert selectors.terms_pending(org=world.org) is None


@pytest.mark.django_db
def test_terms_in_force_fall_back_to_the_current_terms_then_to_defaults(world):
    assert selectors.terms_in_force(org=world.org).max_deferral_days == 60
    current = make_terms("2025-09", max_deferral_days=15)
    assert selectors.terms_in_force(org=world.org) == current


@pytest.mark.django_db
def test_staff_publish_terms_in_the_admin_with_the_sha256_computed(admin_client):
    body = "Standard terms, September 2025."
    response = admin_client.post(
        "/admin/contracts/contractterms/add/",
        {
            "version": "2025-09",
            "title": "Standard",
            "tier": "standard",
            "body": body,
            "effective_at_0": "2025-09-01",
            "effective_at_1": "00:00:00",
            "min_notice_days": 90,
            "max_deferral_days": 60,
            "rollback_window_hours": 72,
            "retention_days": 365,
            "ack_escalation_days": 7,
            "retired_bug_policy": "Kept a year.",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert (
        ContractTerms.objects.get(version="2025-09").body_sha256 == hashlib.sha256(body.encode()).hexdigest()
    )

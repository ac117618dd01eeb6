"""Consent with everything on the screen (issue #13, item 5): the confirmation repeats the diff
summary, the procurement-baseline verdict and the rollback window, and the ledger record of the
consent lists what was shown."""

from __future__ import annotations

import pytest

from contracts.consent import selectors, services
from contracts.errors import Conflict
from contracts.evals import services as evals
from contracts.models import ConsentRecord, LedgerAction
from tests.contracts.diff_support import make_result, make_suite
from tests.contracts.ledger_helpers import accept, decider, make_terms, propose

pytestmark = pytest.mark.django_db


@pytest.fixture
def below_baseline(world):
    """acme's baseline on `old` scores 0.90; the migration target `current` scores 0.80."""
    terms = make_terms("2025-09", rollback_window_hours=48)
    accept(world.org, terms, world.admin)
    suite = make_suite("qa", tolerances={"accuracy": 0.02})
    evals.baseline_mark(
        org=world.org, result=make_result(suite, world.old, accuracy=0.90), acting_user=world.admin
    )
    make_result(suite, world.current, accuracy=0.80)
    world.terms = terms
    world.migration = propose(world)
    return world


def test_the_confirmation_shows_diff_summary_baseline_verdict_and_rollback_window(below_baseline, client):
    client.force_login(below_baseline.admin)
    html = client.get(f"/o/acme/migrations/{below_baseline.migration.pk}/consent/").content.decode()
    assert "1 regression" in html
    assert 'Qa: <strong class="verdict verdict-regression">below your baseline</strong> (accuracy)' in html
    assert "You can roll back within 48 hours of the move." in html
    assert 'name="shown_sha256"' in html


def test_a_consent_given_on_the_screen_records_what_was_shown(below_baseline, client):
    migration = below_baseline.migration
    facts = selectors.consent_facts(org=below_baseline.org, migration=migration, terms=below_baseline.terms)
    client.force_login(below_baseline.admin)
    response = client.post(
        f"/o/acme/migrations/{migration.pk}/consent/",
        {
            "terms_sha256": below_baseline.terms.body_sha256,
            "shown_sha256": selectors.consent_facts_sha256(facts),
        },
    )
    assert response.status_code == 302
    record = ConsentRecord.objects.get(migration=migration, action=LedgerAction.CONSENT)
    shown = record.details["shown"]
    assert shown["rollback_window_hours"] == 48
    assert shown["baseline"] == [
        {
            "suite": "Qa",
            "baseline_snapshot": below_baseline.old.name,
            "verdict": "below",
            "regressions": ["accuracy"],
        }
    ]
    assert shown["diff_summary"]["regressions"] == 1
    assert shown["diff_sha256"] == record.diff_sha256


def test_a_consent_on_an_out_of_date_screen_is_refused_and_writes_nothing(below_baseline):
    records = ConsentRecord.objects.count()
    with pytest.raises(Conflict) as refused:
        services.migration_consent(
            migration=below_baseline.migration, decider=decider(below_baseline.admin), shown_sha256="0" * 64
        )
    assert "review it again" in refused.value.message
    assert ConsentRecord.objects.count() == records
    below_baseline.migration.refresh_from_db()
    assert below_baseline.migration.state == "proposed"

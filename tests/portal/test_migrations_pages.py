"""Migrations, consent history and terms pages: what a person sees, and the wiring of decisions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contracts.consent import selectors, services
from contracts.models import ConsentRecord, LedgerAction, MigrationState, Snapshot
from tests import factories as f
from tests.contracts.ledger_helpers import accept, counts, decider, make_terms, propose

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def signed_in(client, world):
    client.force_login(world.admin)
    return client


def page(org: str = "acme", rest: str = "") -> str:
    return f"/o/{org}/{rest}"


def test_migrations_list_shows_deadlines_countdowns_and_the_diff_link(signed_in, world):
    Snapshot.objects.filter(pk=world.old.pk).update(deprecated_at=f.days(-10), retires_at=f.days(12))
    migration = propose(world)
    response = signed_in.get(page(rest="migrations/"))
    assert response.status_code == 200
    html = response.content.decode()
    assert f"#{migration.pk}" in html
    assert migration.deadline.strftime("%Y-%m-%d") in html
    assert "in 1\xa0week" in html or "in 11\xa0days" in html or "in 1 week" in html
    assert f'href="/o/acme/diff/{world.old.name}...{world.current.name}/"' in html
    assert f'hx-get="/o/acme/migrations/{migration.pk}/consent/"' in html
    assert f'href="/o/acme/migrations/{migration.pk}/consent/"' in html


def test_members_see_migrations_without_decision_buttons(client, world):
    propose(world)
    client.force_login(world.member)
    html = client.get(page(rest="migrations/")).content.decode()
    assert "An admin decides." in html
    assert "/consent/" not in html


def test_the_migrations_list_has_a_bounded_number_of_queries(signed_in, world, django_assert_max_num_queries):
    for n in range(6):
        alias = f.make_alias(name=f"extra-{n}", target=world.current)
        pin = f.make_pin(org=world.org, alias=alias, snapshot=world.old)
        services.migration_propose(pin=pin, to_snapshot=world.current)
    # The page's count (pagination, #17), the ways forward after rollback/decline (#13) and the
    # sign-in policy check (#16) every signed-in request makes: constant in the migrations listed.
    # Each page is read by its keys first, then its rows (portal/paging.py): one query more each.
    with django_assert_max_num_queries(16):
        response = signed_in.get(page(rest="migrations/"))
    assert response.content.decode().count('class="badge badge-proposed"') == 6


def test_the_confirmation_shows_the_exact_terms_version_sha256_and_the_diff(signed_in, world):
    terms = make_terms("2025-09")
    accept(world.org, terms, world.admin)
    migration = propose(world)
    response = signed_in.get(page(rest=f"migrations/{migration.pk}/consent/"), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html  # a partial
    assert "2025-09" in html and terms.body_sha256 in html
    assert f"/o/acme/diff/{world.old.name}...{world.current.name}/" in html
    diff = selectors.diff_sha256(org=world.org, from_snapshot=world.old, to_snapshot=world.current)
    assert diff in html
    full = signed_in.get(page(rest=f"migrations/{migration.pk}/consent/"))
    assert "<html" in full.content.decode() and terms.body_sha256 in full.content.decode()


@pytest.mark.parametrize("who", ["member", "legal"])
def test_members_and_legal_cannot_open_or_post_a_decision(client, world, who):
    migration = propose(world)
    client.force_login(getattr(world, who))
    before = counts(world.org)
    assert client.get(page(rest=f"migrations/{migration.pk}/consent/")).status_code == 403
    for action in ("consent", "defer", "decline", "rollback"):
        assert (
            client.post(
                page(rest=f"migrations/{migration.pk}/{action}/"), {"until": "2030-01-01"}
            ).status_code
            == 403
        )
    assert counts(world.org) == before


def test_consenting_in_the_page_records_ip_user_agent_and_redirects(signed_in, world):
    terms = make_terms("2025-09")
    accept(world.org, terms, world.admin)
    migration = propose(world)
    response = signed_in.post(
        page(rest=f"migrations/{migration.pk}/consent/"),
        {"terms_sha256": terms.body_sha256},
        HTTP_USER_AGENT="Firefox/130",
        REMOTE_ADDR="198.51.100.20",
    )
    assert response.status_code == 302
    assert response["Location"] == f"/o/acme/migrations/{migration.pk}/"
    record = ConsentRecord.objects.get(migration=migration)
    assert (record.action, record.ip, record.user_agent) == (
        LedgerAction.CONSENT,
        "198.51.100.20",
        "Firefox/130",
    )
    assert record.terms_sha256 == terms.body_sha256
    detail = signed_in.get(response["Location"]).content.decode()
    assert f"record #{record.seq}" in detail


def test_an_htmx_decision_answers_with_the_recorded_hash(signed_in, world):
    migration = propose(world)
    response = signed_in.post(page(rest=f"migrations/{migration.pk}/decline/"), {}, **HTMX)
    assert response.status_code == 200
    record = ConsentRecord.objects.get(migration=migration)
    assert record.hash in response.content.decode()
    migration.refresh_from_db()
    assert migration.state == MigrationState.DECLINED


def test_defer_past_the_limit_is_refused_in_the_page_and_writes_nothing(signed_in, world):
    accept(world.org, make_terms("2025-09", max_deferral_days=30), world.admin)
    migration = propose(world)
    before = counts(world.org)
    until = (timezone.now() + dt.timedelta(days=60)).date().isoformat()
    plain = signed_in.post(page(rest=f"migrations/{migration.pk}/defer/"), {"until": until})
    assert plain.status_code == 400
    assert "allow 30 days after the proposal" in plain.content.decode()
    htmx = signed_in.post(page(rest=f"migrations/{migration.pk}/defer/"), {"until": until}, **HTMX)
    assert htmx.status_code == 200
    assert (
        "allow 30 days after the proposal" in htmx.content.decode() and "alert-error" in htmx.content.decode()
    )
    assert counts(world.org) == before


def test_rollback_after_the_window_is_409_in_the_page(signed_in, world):
    accept(world.org, make_terms("2025-09", rollback_window_hours=1), world.admin)
    migration = propose(world)
    services.migration_consent(
        migration=migration, decider=decider(world.admin), at=timezone.now() - dt.timedelta(hours=3)
    )
    before = counts(world.org)
    response = signed_in.post(page(rest=f"migrations/{migration.pk}/rollback/"))
    assert response.status_code == 409
    assert "rollback window closed" in response.content.decode()
    assert counts(world.org) == before


def test_consent_history_filters_by_action_and_date(client, world):
    accept(world.org, make_terms("2025-09"), world.admin)
    services.migration_decline(migration=propose(world), decider=decider(world.admin))
    client.force_login(world.legal)
    everything = client.get(page(rest="consents/")).content.decode()
    assert "accept-terms" in everything and "decline" in everything
    declines = client.get(page(rest="consents/"), {"action": "decline"}).content.decode()
    assert '<span class="badge">decline</span>' in declines
    assert '<span class="badge">accept-terms</span>' not in declines
    tomorrow = (timezone.now() + dt.timedelta(days=1)).date().isoformat()
    assert "No records match." in client.get(page(rest="consents/"), {"from": tomorrow}).content.decode()
    today = timezone.now().date().isoformat()
    assert "decline" in client.get(page(rest="consents/"), {"to": today}).content.decode()
    partial = client.get(page(rest="consents/"), {"action": "decline"}, **HTMX).content.decode()
    assert "<html" not in partial and "decline" in partial
    assert client.get(page(rest="consents/"), {"action": "forge"}).status_code == 400


def test_terms_page_shows_the_full_text_with_a_checkbox_and_a_button(signed_in, world):
    terms = make_terms("2025-09")
    html = signed_in.get(page(rest="terms/")).content.decode()
    assert terms.body in html and terms.body_sha256 in html
    assert 'type="checkbox" name="confirm"' in html
    assert "Accept terms 2025-09" in html


def test_accepting_terms_needs_the_checkbox(signed_in, world):
    terms = make_terms("2025-09")
    data = {"version": "2025-09", "body_sha256": terms.body_sha256}
    refused = signed_in.post(page(rest="terms/accept/"), data)
    assert refused.status_code == 400
    assert ConsentRecord.objects.count() == 0
    accepted = signed_in.post(page(rest="terms/accept/"), {**data, "confirm": "on"})
    assert accepted.status_code == 302
    world.org.refresh_from_db()
    assert world.org.accepted_terms == terms
    assert ConsentRecord.objects.get().action == LedgerAction.ACCEPT_TERMS


def test_members_cannot_accept_terms(client, world):
    terms = make_terms("2025-09")
    client.force_login(world.member)
    response = client.post(
        page(rest="terms/accept/"), {"version": "2025-09", "body_sha256": terms.body_sha256, "confirm": "on"}
    )
    assert response.status_code == 403
    assert ConsentRecord.objects.count() == 0


def test_the_banner_shows_on_every_page_until_the_current_terms_are_accepted(signed_in, world):
    terms = make_terms("2025-09")
    for rest in ("", "migrations/", "consents/", "terms/"):
        assert (
            "has not accepted the current contract terms (2025-09)"
            in signed_in.get(page(rest=rest)).content.decode()
        )
    accept(world.org, terms, world.admin)
    assert "has not accepted the current contract terms" not in signed_in.get(page()).content.decode()


def test_no_banner_when_no_terms_are_published(signed_in):
    assert "has not accepted" not in signed_in.get(page()).content.decode()

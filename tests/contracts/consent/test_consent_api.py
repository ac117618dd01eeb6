"""The migration and consent endpoints of the REST API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contracts.consent import services
from contracts.models import ConsentRecord, LedgerAction, MigrationState, Snapshot
from tests import factories as f
from tests.contracts.ledger_helpers import accept, counts, decider, make_terms, propose

pytestmark = pytest.mark.django_db

BASE = "/api/v1"


def url(migration, action: str = "") -> str:
    return f"{BASE}/migrations/{migration.pk}/" + (f"{action}/" if action else "")


def test_list_and_detail_show_this_organisations_migrations(world, api):
    migration = propose(world)
    listed = api.get(f"{BASE}/migrations/", key=world.key)
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()] == [migration.pk]
    row = listed.json()[0]
    assert (row["alias"], row["from_snapshot"], row["to_snapshot"], row["state"]) == (
        "v1-chat",
        world.old.name,
        world.current.name,
        "proposed",
    )
    assert row["diff_url"] == f"/o/acme/diff/{world.old.name}...{world.current.name}/"
    assert api.get(url(migration), key=world.key).json()["id"] == migration.pk
    assert api.get(f"{BASE}/migrations/", key=world.other_key).json() == []


def test_another_organisations_migration_is_404_and_untouched(world, api):
    migration = propose(world)
    for path in (url(migration), url(migration, "consent"), url(migration, "decline")):
        call = api.get if path == url(migration) else api.post
        assert call(path, key=world.other_key).status_code == 404
    assert ConsentRecord.objects.count() == 0


def test_consent_by_api_key_moves_the_pin_and_returns_the_record(world, api):
    accept(world.org, make_terms("2025-09"), world.admin)
    migration = propose(world)
    response = api.post(url(migration, "consent"), key=world.key, HTTP_USER_AGENT="acme-deployer/2.1")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["migration"]["state"] == "applied"
    record = body["record"]
    assert record["action"] == "consent" and record["terms_version"] == "2025-09"
    assert record["actor_email"].startswith("api-key:")
    assert record["user_agent"] == "acme-deployer/2.1" and record["ip"] == "127.0.0.1"
    world.pin.refresh_from_db()
    assert world.pin.snapshot == world.current


def test_consent_with_a_date_schedules_the_move(world, api):
    migration = propose(world)
    at = (timezone.now() + dt.timedelta(days=3)).replace(microsecond=0)
    response = api.post(url(migration, "consent"), {"at": at.isoformat()}, key=world.key)
    assert response.status_code == 200
    assert response.json()["migration"]["state"] == "consented"
    assert response.json()["record"]["details"]["scheduled_for"]


def test_defer_past_the_limit_is_400_naming_the_limit_and_writes_nothing(world, api):
    accept(world.org, make_terms("2025-09", max_deferral_days=30), world.admin)
    migration = propose(world)
    before = counts(world.org)
    until = (timezone.now() + dt.timedelta(days=45)).date().isoformat()
    response = api.post(url(migration, "defer"), {"until": until}, key=world.key)
    assert response.status_code == 400
    error = response.json()["error"]
    # Written for people: the limit in words, no setting name, no ISO instant.
    assert "allow 30 days after the proposal" in error["fields"]["until"]
    assert "max_deferral_days" not in error["message"] and "max_deferral_days" not in error["fields"]["until"]
    assert "T" not in error["fields"]["until"].split("Latest allowed: ")[1][:12]
    assert counts(world.org) == before


def test_defer_within_the_limit(world, api):
    migration = propose(world)
    until = (timezone.now() + dt.timedelta(days=10)).date().isoformat()
    response = api.post(url(migration, "defer"), {"until": until}, key=world.key)
    assert response.status_code == 200
    assert response.json()["migration"]["state"] == "deferred"


@pytest.mark.parametrize("payload", [{}, {"until": "not-a-date"}, {"until": "0001-01-01"}])
def test_defer_with_bad_input_is_400(world, api, payload):
    migration = propose(world)
    response = api.post(url(migration, "defer"), payload, key=world.key)
    assert response.status_code == 400
    assert "until" in response.json()["error"]["fields"]


def test_deciding_an_already_decided_migration_is_409_and_writes_nothing(world, api):
    migration = propose(world)
    assert api.post(url(migration, "decline"), key=world.key).status_code == 200
    before = counts(world.org)
    for action in ("consent", "decline"):
        response = api.post(url(migration, action), key=world.key)
        assert response.status_code == 409
        assert response.json()["error"]["fields"]["state"] == "declined"
    assert counts(world.org) == before


def test_deciding_an_expired_migration_is_409(world, api):
    Snapshot.objects.filter(pk=world.old.pk).update(deprecated_at=f.days(-30), retires_at=f.days(10))
    migration = propose(world)
    from contracts.models import Migration

    Migration.objects.filter(pk=migration.pk).update(deadline=f.days(-1))
    before = counts(world.org)
    response = api.post(url(migration, "consent"), key=world.key)
    assert response.status_code == 409
    assert "deadline" in response.json()["error"]["fields"]
    assert counts(world.org) == before


@pytest.mark.parametrize("who", ["member", "legal"])
def test_members_and_legal_get_403_over_a_session_and_nothing_is_written(world, client, who):
    migration = propose(world)
    client.force_login(getattr(world, who))
    before = counts(world.org)
    for action in ("consent", "decline", "rollback"):
        response = client.post(url(migration, action), {}, content_type="application/json")
        assert response.status_code == 403
    response = client.post(url(migration, "defer"), {"until": "2030-01-01"}, content_type="application/json")
    assert response.status_code == 403
    assert counts(world.org) == before


def test_a_session_admin_decides_with_their_email_on_the_record(world, client):
    migration = propose(world)
    client.force_login(world.admin)
    response = client.post(url(migration, "decline"), {}, content_type="application/json")
    assert response.status_code == 200
    assert response.json()["record"]["actor_email"] == world.admin.email


def test_rollback_after_the_window_is_409_with_the_window_end(world, api):
    accept(world.org, make_terms("2025-09", rollback_window_hours=1), world.admin)
    migration = propose(world)
    services.migration_consent(
        migration=migration, decider=decider(world.admin), at=timezone.now() - dt.timedelta(hours=2)
    )
    before = counts(world.org)
    response = api.post(url(migration, "rollback"), key=world.key)
    assert response.status_code == 409
    assert response.json()["error"]["fields"]["window_end"]
    assert counts(world.org) == before


def test_rollback_within_the_window(world, api):
    migration = propose(world)
    services.migration_consent(migration=migration, decider=decider(world.admin))
    response = api.post(url(migration, "rollback"), key=world.key)
    assert response.status_code == 200
    assert response.json()["migration"]["state"] == MigrationState.ROLLED_BACK
    world.pin.refresh_from_db()
    assert world.pin.snapshot == world.old


def test_consents_list_filters_by_action_and_dates(world, api):
    terms = make_terms("2025-09")
    accept(world.org, terms, world.admin)
    services.migration_decline(migration=propose(world), decider=decider(world.admin))
    everything = api.get(f"{BASE}/consents/", key=world.key).json()
    assert everything["count"] == 2
    assert [r["seq"] for r in everything["results"]] == [2, 1]
    declines = api.get(f"{BASE}/consents/?action=decline", key=world.key).json()
    assert [r["action"] for r in declines["results"]] == [LedgerAction.DECLINE]
    future = (timezone.now() + dt.timedelta(days=1)).isoformat()
    assert api.get(f"{BASE}/consents/", key=world.key, data={"from": future}).json()["count"] == 0
    past = (timezone.now() - dt.timedelta(days=1)).isoformat()
    assert api.get(f"{BASE}/consents/", key=world.key, data={"to": past}).json()["count"] == 0
    assert api.get(f"{BASE}/consents/", key=world.other_key).json()["count"] == 0


def test_consents_list_rejects_an_unknown_action(world, api):
    response = api.get(f"{BASE}/consents/?action=forge", key=world.key)
    assert response.status_code == 400
    assert "action" in response.json()["error"]["fields"]


def test_verify_endpoint_reports_the_chain_head(world, api):
    record = accept(world.org, make_terms("2025-09"), world.admin)
    body = api.get(f"{BASE}/consents/verify/", key=world.key).json()
    assert body == {
        "organization": "acme",
        "intact": True,
        "records": 1,
        "head_seq": 1,
        "head_hash": record.hash,
        "broken_seq": None,
        "reason": "",
        "checkpoints": 0,
        "contradicted_checkpoint": None,
        "problems": [],
    }


def test_verify_endpoint_reports_the_first_broken_record(world, api):
    from tests.contracts.ledger_helpers import append_records, tampering

    records = append_records(world.org, 2)
    with tampering() as cursor:
        cursor.execute("UPDATE contracts_consentrecord SET user_agent = 'x' WHERE id = %s", [records[1].pk])
    body = api.get(f"{BASE}/consents/verify/", key=world.key).json()
    assert body["intact"] is False and body["broken_seq"] == 2 and "altered" in body["reason"]


def test_unauthenticated_calls_are_401(world, api):
    migration = propose(world)
    assert api.get(f"{BASE}/migrations/").status_code == 401
    assert api.post(url(migration, "consent")).status_code == 401


def test_migration_list_queries_do_not_grow_with_the_number_of_migrations(
    world, api, django_assert_max_num_queries
):
    for n in range(8):
        alias = f.make_alias(name=f"extra-{n}", target=world.current)
        pin = f.make_pin(org=world.org, alias=alias, snapshot=world.old)
        services.migration_propose(pin=pin, to_snapshot=world.current)
    api.get(f"{BASE}/migrations/", key=world.key)  # warm the key cache
    with django_assert_max_num_queries(3):
        response = api.get(f"{BASE}/migrations/", key=world.key)
    assert len(response.json()) == 8


def test_ledger_records_the_address_the_trusted_proxy_saw(settings, rf):
    from contracts.tenancy.auth import client_ip

    request = rf.get("/", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.7", REMOTE_ADDR="10.0.0.2")
    settings.TRUSTED_PROXIES = 0
    assert client_ip(request) == "10.0.0.2"
    settings.TRUSTED_PROXIES = 1
    assert client_ip(request) == "203.0.113.7"  # the caller's own claim (6.6.6.6) is not trusted
    settings.TRUSTED_PROXIES = 3
    assert client_ip(request) == "10.0.0.2"  # fewer hops than configured: fall back to the socket

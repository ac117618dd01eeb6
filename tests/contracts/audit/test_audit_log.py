"""The audit log of admin actions: what each service records, append-only, page, CSV, API, staff log."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, InternalError, connection, transaction
from django.test.utils import CaptureQueriesContext

from contracts.audit import services as audit_services
from contracts.audit.origin import origin_bind, origin_reset
from contracts.billing import services as billing_services
from contracts.ledger import exports
from contracts.models import AppendOnlyError, AuditAction, AuditEntry, UpgradePolicy
from contracts.pins import services as pins_services
from contracts.tenancy import services as tenancy_services
from notifications import services as notification_services
from tests import factories as f
from tests.conftest import requires_postgres

pytestmark = pytest.mark.django_db


def _entries(org, action):
    return list(AuditEntry.objects.filter(organization=org, action=action))


def test_api_key_create_and_revoke_are_recorded_with_actor_and_before_after(world):
    key, _raw = tenancy_services.api_key_create(org=world.org, name="ci", acting_user=world.admin)
    tenancy_services.api_key_revoke(api_key=key, acting_user=world.admin)
    tenancy_services.api_key_revoke(api_key=key, acting_user=world.admin)  # already revoked: no entry

    (created,) = _entries(world.org, AuditAction.API_KEY_CREATE)[:1]
    assert created.actor_kind == "user" and created.actor_user == world.admin
    assert created.actor_label == world.admin.email
    assert created.after["name"] == "ci" and created.target_id == str(key.pk)
    revoked = _entries(world.org, AuditAction.API_KEY_REVOKE)
    assert len(revoked) == 1
    assert revoked[0].before == {"revoked_at": None} and revoked[0].after["revoked_at"]


def test_origin_bound_by_the_request_is_recorded():
    token = origin_bind(ip="203.0.113.9", user_agent="pytest-agent")
    try:
        org = f.OrganizationFactory()
        entry = audit_services.audit_record(org=org, action=AuditAction.CONTACT_ADD, target_type="contact")
    finally:
        origin_reset(token)
    assert (entry.ip, entry.user_agent, entry.actor_kind, entry.actor_label) == (
        "203.0.113.9",
        "pytest-agent",
        "system",
        "system",
    )


def test_webhook_contact_and_calendar_changes_are_recorded(world, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True
    endpoint = notification_services.webhook_endpoint_create(
        org=world.org,
        url="http://127.0.0.1:9/x",
        events=["snapshot.deprecated"],
        acting_user=world.admin,
    )
    notification_services.webhook_endpoint_rotate_secret(endpoint=endpoint, acting_user=world.admin)
    notification_services.webhook_endpoint_delete(endpoint=endpoint, acting_user=world.admin)
    contact = notification_services.contact_add(
        org=world.org, email="ops@acme.example", acting_user=world.admin
    )
    notification_services.contact_remove(contact=contact, acting_user=world.admin)
    notification_services.calendar_token_regenerate(org=world.org, acting_user=world.admin)
    notification_services.calendar_token_revoke(org=world.org, acting_user=world.admin)

    actions = list(
        AuditEntry.objects.filter(organization=world.org).order_by("id").values_list("action", flat=True)
    )
    assert actions[-7:] == [
        AuditAction.WEBHOOK_CREATE,
        AuditAction.WEBHOOK_ROTATE,
        AuditAction.WEBHOOK_DELETE,
        AuditAction.CONTACT_ADD,
        AuditAction.CONTACT_REMOVE,
        AuditAction.CALENDAR_REGENERATE,
        AuditAction.CALENDAR_REVOKE,
    ]
    removed = _entries(world.org, AuditAction.CONTACT_REMOVE)[0]
    assert removed.before == {"email": "ops@acme.example", "name": ""}


def test_a_refused_change_writes_no_entry(world):
    before = AuditEntry.objects.count()
    with pytest.raises(Exception, match="name"):
        tenancy_services.api_key_create(org=world.org, name="", acting_user=world.admin)
    with pytest.raises(Exception, match="policy"):
        pins_services.pin_policy_change(pin=world.pin, policy="sometimes", acting_user=world.admin)
    assert AuditEntry.objects.count() == before


def test_pin_policy_export_and_extended_support_are_recorded(world):
    pins_services.pin_policy_change(pin=world.pin, policy=UpgradePolicy.FOLLOW, acting_user=world.admin)
    entry = _entries(world.org, AuditAction.PIN_POLICY_CHANGE)[0]
    assert (entry.before, entry.after, entry.target_label) == (
        {"policy": "manual"},
        {"policy": "follow"},
        "v1-chat",
    )

    exports.export_create(
        org=world.org, fmt="csv", filters=exports.export_filters_parse({}), requested_by=world.legal
    )
    assert _entries(world.org, AuditAction.EXPORT_REQUEST)[0].actor_user == world.legal

    world.old.extended_support_offered = True
    world.old.extended_support_until = f.days(60)
    world.old.save(update_fields=["extended_support_offered", "extended_support_until"])
    billing_services.extended_support_grant(org=world.org, snapshot=world.old, acting_user=world.admin)
    assert _entries(world.org, AuditAction.EXTENDED_SUPPORT_BUY)[0].target_label == world.old.name


def test_entries_refuse_update_and_delete_in_the_model(world):
    entry = audit_services.audit_record(org=world.org, action=AuditAction.CONTACT_ADD, target_type="contact")
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).update(target_label="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.filter(pk=entry.pk).delete()


@requires_postgres
def test_the_database_refuses_rewriting_entries(world):
    audit_services.audit_record(org=world.org, action=AuditAction.CONTACT_ADD, target_type="contact")
    for sql in ("UPDATE contracts_auditentry SET target_label = 'x'", "DELETE FROM contracts_auditentry"):
        with (
            pytest.raises((IntegrityError, InternalError), match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)


# -- the page --------------------------------------------------------------------------------


def test_audit_page_lists_filters_and_records_where_from(client, world):
    client.force_login(world.admin)
    response = client.post(
        f"/o/{world.org.slug}/settings/keys/new/", {"name": "from-the-page"}, HTTP_USER_AGENT="Browser/1.0"
    )
    assert response.status_code == 201
    entry = _entries(world.org, AuditAction.API_KEY_CREATE)[0]
    assert (entry.ip, entry.user_agent) == ("127.0.0.1", "Browser/1.0")

    page = client.get(f"/o/{world.org.slug}/settings/audit/")
    assert page.status_code == 200
    assert b"from-the-page" in page.content and b"API key created" in page.content
    filtered = client.get(f"/o/{world.org.slug}/settings/audit/", {"action": AuditAction.CONTACT_ADD})
    assert b"from-the-page" not in filtered.content and b"No entries match" in filtered.content


def test_audit_page_refuses_bad_filters_and_keeps_what_was_typed(client, world):
    client.force_login(world.admin)
    response = client.get(
        f"/o/{world.org.slug}/settings/audit/", {"since": "2025-05-02", "until": "2025-05-01", "actor": "bob"}
    )
    assert response.status_code == 400
    assert b"Must be on or after the start date" in response.content
    assert b'value="bob"' in response.content


def test_audit_csv_export_streams_filtered_entries(client, world):
    tenancy_services.api_key_create(org=world.org, name="=cmd|calc", acting_user=world.admin)
    notification_services.contact_add(org=world.org, email="x@acme.example", acting_user=world.admin)
    client.force_login(world.legal)
    response = client.get(
        f"/o/{world.org.slug}/settings/audit/", {"format": "csv", "action": AuditAction.API_KEY_CREATE}
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["action"] for row in rows} == {AuditAction.API_KEY_CREATE}
    assert any(row["target"].startswith("'=cmd") for row in rows)  # spreadsheet formulas neutralised


def test_audit_page_is_for_admins_and_legal_only(client, world):
    client.force_login(world.member)
    assert client.get(f"/o/{world.org.slug}/settings/audit/").status_code == 403
    client.force_login(world.outsider)
    assert client.get(f"/o/{world.org.slug}/settings/audit/").status_code == 404


def test_audit_page_query_count_does_not_grow_with_entries(client, world):
    client.force_login(world.admin)
    url = f"/o/{world.org.slug}/settings/audit/"
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    for n in range(60):
        audit_services.audit_record(
            org=world.org, action=AuditAction.CONTACT_ADD, target_type="contact", target_label=f"c{n}"
        )
    with CaptureQueriesContext(connection) as many:
        assert client.get(url).status_code == 200
    assert len(many) == len(few) <= 15


# -- the API ---------------------------------------------------------------------------------


def test_api_lists_own_entries_with_key_actor(api, world, settings):
    settings.WEBHOOKS_ALLOW_PRIVATE = True  # a loopback URL: nothing is resolved or delivered
    response = api.post(
        "/api/v1/webhooks/",
        {"url": "http://127.0.0.1:9/api", "events": ["snapshot.deprecated"]},
        key=world.key,
    )
    assert response.status_code == 201, response.content
    body = api.get("/api/v1/audit-log/?action=webhook.create", key=world.key).json()
    assert body["count"] == 1
    (entry,) = body["results"]
    assert entry["actor_kind"] == "api-key" and entry["actor"].startswith("api-key:vcp_")
    assert entry["after"]["url"] == "http://127.0.0.1:9/api"
    theirs = api.get("/api/v1/audit-log/", key=world.other_key).json()["results"]
    assert theirs and all(e["action"] != "webhook.create" for e in theirs)


def test_api_is_for_admins_and_legal_and_validates_filters(client, api, world):
    client.force_login(world.legal)
    assert client.get("/api/v1/audit-log/").status_code == 200
    client.force_login(world.member)
    response = client.get("/api/v1/audit-log/")
    assert response.status_code == 403 and response.json()["error"]["code"]
    client.force_login(world.admin)
    response = client.get("/api/v1/audit-log/?from=yesterday&limit=5000")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) >= {"from", "limit"}


# -- the vendor-side log ---------------------------------------------------------------------


def test_staff_actions_in_admin_go_to_the_vendor_log_not_the_customers(client, world):
    staff = get_user_model().objects.create_user(
        "vendor", "vendor@vendor.example", "pw", is_staff=True, is_superuser=True
    )
    client.force_login(staff)
    response = client.post(
        f"/admin/contracts/organization/{world.org.pk}/change/",
        {
            "slug": "acme",
            "name": "Acme Renamed",
            "tier": "standard",
            "created_at_0": "2025-01-01",
            "created_at_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    entry = AuditEntry.objects.get(organization=None, action=AuditAction.ADMIN_CHANGE)
    assert entry.actor_user == staff and entry.target_type == "contracts.organization"
    assert entry.target_id == str(world.org.pk)
    assert "name" in str(entry.after["change"]).lower()

    family = world.family
    client.post(
        "/admin/contracts/modelfamily/",
        {"action": "delete_selected", "_selected_action": [f.FamilyFactory(slug="gone").pk], "post": "yes"},
    )
    deleted = AuditEntry.objects.get(organization=None, action=AuditAction.ADMIN_DELETE)
    assert deleted.target_label == "Gone" and family.pk

    client.force_login(world.admin)
    page = client.get(f"/o/{world.org.slug}/settings/audit/").content
    assert b'data-action="api-key.create"' in page and b'data-action="admin.' not in page

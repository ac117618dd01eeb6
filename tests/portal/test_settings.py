"""Settings: admins change a pin's upgrade policy (a PinChange with the actor); members get 403 and
nothing is recorded; CSRF is enforced; API keys are created (shown once), listed and revoked."""

from __future__ import annotations

import pytest
from django.test import Client

from contracts import models
from contracts.templatetags.instants import instant
from contracts.tenancy import services
from tests import factories as f

pytestmark = pytest.mark.django_db


def policy_url(pin):
    return f"/o/{pin.organization.slug}/pins/{pin.pk}/policy/"


def test_admin_changes_a_policy_via_htmx_and_it_is_recorded_with_the_actor(world, client):
    client.force_login(world.admin)
    before = models.PinChange.objects.count()
    response = client.post(policy_url(world.pin), {"policy": "follow"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        html.lstrip().startswith(f'<tr id="pin-{world.pin.pk}"') and "Saved: Follow the alias default" in html
    )
    world.pin.refresh_from_db()
    assert world.pin.policy == "follow"
    change = models.PinChange.objects.latest("id")
    assert models.PinChange.objects.count() == before + 1
    assert (change.actor, change.from_policy, change.to_policy) == (world.admin, "manual", "follow")


def test_plain_post_without_javascript_redirects_back_with_a_message(world, client):
    client.force_login(world.admin)
    response = client.post(policy_url(world.pin), {"policy": "on-retirement"}, follow=True)
    assert response.redirect_chain[-1][0] == "/o/acme/settings/"
    assert "upgrade policy is now" in response.content.decode()


def test_member_posting_a_policy_change_gets_403_and_nothing_is_recorded(world, client):
    client.force_login(world.member)
    before = models.PinChange.objects.count()
    response = client.post(policy_url(world.pin), {"policy": "follow"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    world.pin.refresh_from_db()
    assert world.pin.policy == "manual" and models.PinChange.objects.count() == before
    client.force_login(world.legal)
    assert client.post(policy_url(world.pin), {"policy": "follow"}).status_code == 403


def test_members_see_policies_read_only(world, client):
    client.force_login(world.member)
    html = client.get("/o/acme/settings/").content.decode()
    assert "Only admins can change policies" in html and "<select" not in html
    assert "/settings/keys/" not in html


def test_unknown_policy_is_refused_with_the_field_named_and_nothing_recorded(world, client):
    client.force_login(world.admin)
    before = models.PinChange.objects.count()
    response = client.post(policy_url(world.pin), {"policy": "yolo"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "policy" in response.content.decode()
    assert models.PinChange.objects.count() == before


def test_policy_change_of_a_foreign_pin_is_404(world, client):
    foreign_pin = models.Pin.objects.get(organization=world.other_org)
    client.force_login(world.admin)
    assert client.post(f"/o/acme/pins/{foreign_pin.pk}/policy/", {"policy": "manual"}).status_code == 404
    assert client.post(f"/o/globex/pins/{foreign_pin.pk}/policy/", {"policy": "manual"}).status_code == 404
    foreign_pin.refresh_from_db()
    assert foreign_pin.policy == "follow"


def test_missing_csrf_token_is_403_and_nothing_recorded(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    before = models.PinChange.objects.count()
    refused = client.post(policy_url(world.pin), {"policy": "follow"})
    assert refused.status_code == 403 and "Nothing was changed" in refused.content.decode()
    assert "<style" not in refused.content.decode()  # the portal's page, not Django's inline-styled one
    assert client.post("/o/acme/settings/keys/new/", {"name": "sneaky"}).status_code == 403
    assert models.PinChange.objects.count() == before
    assert not models.ApiKey.objects.filter(name="sneaky").exists()


def test_csrf_token_from_the_page_header_lets_htmx_post(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    client.get("/o/acme/settings/")
    token = client.cookies["csrftoken"].value
    response = client.post(
        policy_url(world.pin), {"policy": "follow"}, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 200


def test_api_key_is_created_and_shown_once(world, client):
    client.force_login(world.admin)
    response = client.post("/o/acme/settings/keys/new/", {"name": "ci resolver"})
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    raw = response.context["raw_key"]
    html = response.content.decode()
    assert raw in html and "shown only once" in html
    key = models.ApiKey.objects.get(name="ci resolver")
    assert (
        key.organization == world.org
        and key.created_by == world.admin
        and key.key_hash == models.ApiKey.hash_key(raw)
    )
    listing = client.get("/o/acme/settings/keys/").content.decode()
    assert raw not in listing and f"{key.prefix}…" in listing and "Never" in listing
    api = client.get("/api/v1/pins/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert api.status_code == 200


def test_api_key_needs_a_name_and_nothing_is_created_without_one(world, client):
    client.force_login(world.admin)
    before = models.ApiKey.objects.count()
    response = client.post("/o/acme/settings/keys/new/", {"name": "  "})
    assert response.status_code == 400 and "name" in response.content.decode()
    assert models.ApiKey.objects.count() == before


def test_api_key_list_shows_prefix_and_last_use_never_the_secret(world, client):
    key = models.ApiKey.objects.get(key_hash=models.ApiKey.hash_key(world.key))
    used = f.days(-2).replace(second=0, microsecond=0)
    models.ApiKey.objects.filter(pk=key.pk).update(last_used_at=used)
    client.force_login(world.admin)
    html = client.get("/o/acme/settings/keys/").content.decode()
    assert instant(used) in html  # e.g. "30 Nov 2026, 09:31 UTC"
    assert world.key not in html and f"{key.prefix}…" in html


def test_revoked_key_stops_working(world, client):
    key = models.ApiKey.objects.get(key_hash=models.ApiKey.hash_key(world.key))
    client.force_login(world.admin)
    response = client.post(f"/o/acme/settings/keys/{key.pk}/revoke/", follow=True)
    assert "is revoked" in response.content.decode() and "Revoked" in response.content.decode()
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client.get("/api/v1/pins/", HTTP_AUTHORIZATION=f"Bearer {world.key}").status_code == 401


def test_keys_page_is_for_admins_and_foreign_keys_are_404(world, client):
    foreign = models.ApiKey.objects.get(key_hash=models.ApiKey.hash_key(world.other_key))
    client.force_login(world.member)
    assert client.get("/o/acme/settings/keys/").status_code == 403
    assert client.post("/o/acme/settings/keys/new/", {"name": "x"}).status_code == 403
    client.force_login(world.admin)
    assert client.post(f"/o/acme/settings/keys/{foreign.pk}/revoke/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None


def test_staff_keys_are_not_listed_to_customers(world, client):
    f.UserFactory(username="staffer", is_staff=True)

    services.api_key_create(org=None, name="vendor staff key", scope=models.ApiKeyScope.STAFF)
    client.force_login(world.admin)
    assert "vendor staff key" not in client.get("/o/acme/settings/keys/").content.decode()

"""The e-mail-first sign-in page and the organisations' sign-in policies (SSO required, staff exempt)."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from contracts.identity import services as identity_services
from contracts.models import OrgDomain, ScimToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_sso(world, oidc_provider):
    client_id, secret = oidc_provider.register_client(
        "http://testserver/accounts/oidc/org-acme/login/callback/"
    )
    identity_services.sso_configure(
        org=world.org,
        issuer=oidc_provider.issuer,
        client_id=client_id,
        client_secret=secret,
        domains=["example.com"],  # the factories' addresses: every acme user is at this domain
        domains_verified=True,
    )
    return oidc_provider


def _require_sso(world):
    identity_services.sso_policy_set(
        org=world.org,
        require_sso=True,
        require_mfa_for_admins=False,
        default_role="member",
        acting_user=world.admin,
    )


def test_an_address_at_a_verified_domain_is_handed_to_the_provider(client, world, acme_sso):
    response = client.post("/accounts/login/", {"username": "someone@EXAMPLE.com", "password": ""})
    assert response.status_code == 200
    body = response.content.decode()
    assert '<meta http-equiv="refresh" content="0;url=' + acme_sso.issuer + "/oauth2/authorize?" in body
    assert "login_hint=someone%40EXAMPLE.com" in body
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_an_address_at_an_unverified_domain_asks_for_a_password(client, world, acme_sso):
    OrgDomain.objects.filter(domain="example.com").update(verified_at=None)
    response = client.post("/accounts/login/", {"username": "someone@example.com", "password": ""})
    assert response.status_code == 200 and "Enter your password" in response.content.decode()


def test_password_sign_in_still_works_by_username_or_address(client, world):
    response = client.post("/accounts/login/", {"username": world.admin.email, "password": "pw-for-tests-1"})
    assert response.status_code == 302
    assert client.get("/o/acme/").status_code == 200


def test_sso_required_refuses_password_sign_in_for_members_but_not_staff(client, world, acme_sso):
    _require_sso(world)
    response = client.post("/accounts/login/", {"username": "acme-member", "password": "pw-for-tests-1"})
    assert response.status_code == 200 and "requires single sign-on" in response.content.decode()
    assert "_auth_user_id" not in client.session

    staff = get_user_model().objects.get(username="acme-admin")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    response = client.post("/accounts/login/", {"username": "acme-admin", "password": "pw-for-tests-1"})
    assert response.status_code == 302 and client.get("/o/acme/").status_code == 200


def test_a_password_session_from_before_the_policy_is_ended(client, world, acme_sso):
    client.post("/accounts/login/", {"username": "acme-legal", "password": "pw-for-tests-1"})
    assert client.get("/o/acme/").status_code == 200
    _require_sso(world)
    cache.clear()  # the policy is cached for a minute
    response = client.get("/o/acme/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in client.session


def test_sso_page_for_admins_keeps_what_was_typed_on_errors(client, world):
    client.force_login(world.admin)
    page = client.get("/o/acme/settings/sso/")
    assert page.status_code == 200 and "/accounts/oidc/org-acme/login/callback/" in page.content.decode()
    response = client.post(
        "/o/acme/settings/sso/provider/", {"issuer": "ftp://idp", "client_id": "abc", "client_secret": "x"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert 'value="ftp://idp"' in body and 'value="abc"' in body and "issuer" in body
    response = client.post("/o/acme/settings/sso/domains/", {"domain": "acme-health.example"})
    assert response.status_code == 302
    assert "Awaiting verification" in client.get("/o/acme/settings/sso/").content.decode()
    client.force_login(world.legal)
    assert client.get("/o/acme/settings/sso/").status_code == 403


def test_scim_token_is_shown_once_on_the_sso_page_and_can_be_revoked(client, world):
    client.force_login(world.admin)
    response = client.post("/o/acme/settings/sso/scim-tokens/", {"name": "Okta"})
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    raw = re.search(
        r'id="new-scim-token" class="secret" readonly value="(scim_[^"]+)"', response.content.decode()
    ).group(1)
    assert raw not in client.get("/o/acme/settings/sso/").content.decode()
    token = ScimToken.objects.get(organization=world.org)
    assert client.post(f"/o/acme/settings/sso/scim-tokens/{token.pk}/revoke/").status_code == 302
    assert client.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401
    assert client.post("/o/acme/settings/sso/scim-tokens/", {"name": ""}).status_code == 400

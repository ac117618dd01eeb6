"""Single sign-on end to end in Chromium against a real OpenID Connect provider in its own process:
the e-mail on the sign-in page, the provider's page, back in the portal as a member."""

from __future__ import annotations

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model

from contracts.identity import services as identity_services
from contracts.models import AuditAction, AuditEntry, Membership, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def acme_sso(world, live_server, oidc_provider):
    client_id, secret = oidc_provider.register_client(
        f"{live_server.url}/accounts/oidc/org-acme/login/callback/"
    )
    identity_services.sso_configure(
        org=world.org,
        issuer=oidc_provider.issuer,
        client_id=client_id,
        client_secret=secret,
        domains=["acme.test"],
        domains_verified=True,
        default_role=Role.LEGAL,
    )
    return oidc_provider


def _sign_in_at_provider(page, email: str, sub: str) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", email)
    page.click("#continue")
    page.wait_for_url(lambda url: "/oauth2/authorize" in url)
    assert "login_hint=" in page.url and "code_challenge=" in page.url  # PKCE
    page.fill("input[name=sub]", sub)
    page.click("button:has-text('Authorize')")
    page.wait_for_load_state("networkidle")


def test_sso_sign_in_lands_a_new_person_in_the_organisation(loopback_page, world, acme_sso, live_server):
    acme_sso.set_user("alice-sub", email="alice@acme.test", email_verified=True, preferred_username="alice")
    _sign_in_at_provider(loopback_page, "alice@acme.test", "alice-sub")

    assert loopback_page.url == f"{live_server.url}/o/acme/"
    assert "Pins of Acme" in loopback_page.content()
    user = get_user_model().objects.get(email="alice@acme.test")
    assert Membership.objects.get(user=user, organization=world.org).role == Role.LEGAL
    assert AuditEntry.objects.filter(organization=world.org, action=AuditAction.MEMBER_JOIN_SSO).exists()


def test_an_address_outside_the_organisations_domains_is_refused(loopback_page, world, acme_sso, live_server):
    acme_sso.set_user("mallory-sub", email="ceo@globex.example", email_verified=True)
    _sign_in_at_provider(loopback_page, "anyone@acme.test", "mallory-sub")

    assert loopback_page.url.startswith(f"{live_server.url}/accounts/login/")
    assert "may not sign in that e-mail address" in loopback_page.content()
    assert not get_user_model().objects.filter(email="ceo@globex.example").exists()
    assert not Membership.objects.filter(organization=world.org, user__email="ceo@globex.example").exists()


def test_an_existing_account_signs_in_as_itself_and_keeps_its_password(
    loopback_page, world, acme_sso, live_server
):
    user = get_user_model().objects.create_user("carol", "carol@acme.test", "carols-own-pass-1")
    acme_sso.set_user("carol-sub", email="carol@acme.test", email_verified=True)
    _sign_in_at_provider(loopback_page, "carol@acme.test", "carol-sub")

    assert loopback_page.url == f"{live_server.url}/o/acme/"
    assert get_user_model().objects.filter(email="carol@acme.test").count() == 1
    user.refresh_from_db()
    assert user.check_password("carols-own-pass-1")  # allauth did not wipe it: the domain is verified
    assert Membership.objects.get(user=user, organization=world.org).role == Role.LEGAL


# -- passkeys ----------------------------------------------------------------------------------


@pytest.fixture
def virtual_authenticator(loopback_page):
    """Chromium's virtual authenticator (DevTools WebAuthn domain): a platform key with a PIN."""
    cdp = loopback_page.context.new_cdp_session(loopback_page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, authenticator["authenticatorId"]


def test_a_passkey_is_registered_and_signs_in_without_a_password(
    loopback_page, virtual_authenticator, world, live_server, settings
):
    # WebAuthn needs a domain as relying party: the browser uses http://localhost, never 127.0.0.1.
    settings.MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = True
    assert live_server.url.startswith("http://localhost:")
    page = loopback_page
    cdp, authenticator_id = virtual_authenticator
    page.goto("/accounts/login/")
    page.fill("#id_username", "acme-admin")
    page.fill("#id_password", "pw-for-tests-1")
    page.click("#continue")
    page.wait_for_load_state("networkidle")
    assert page.url == f"{live_server.url}/o/acme/", (page.url, page.content()[:3000])

    page.goto("/accounts/2fa/webauthn/add/?passwordless=1")
    if "/accounts/reauthenticate/" in page.url:
        page.fill("input[name=password]", "pw-for-tests-1")
        page.click("form[action='/accounts/reauthenticate/'] button[type=submit]")
        page.wait_for_load_state("networkidle")
        assert "/accounts/2fa/webauthn/add/" in page.url, (page.url, page.content()[-3000:])
    page.fill("input[name=name]", "Laptop")
    page.check("input[name=passwordless]")
    page.click("#mfa_webauthn_add")
    page.wait_for_url(lambda url: "/accounts/2fa/webauthn/add/" not in url)  # saved, then redirected
    credentials = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"]
    assert Authenticator.objects.filter(user=world.admin, type=Authenticator.Type.WEBAUTHN).count() == 1

    page.click("button:has-text('Sign out')")
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    page.goto("/accounts/login/")
    page.click("#passkey_login")
    page.wait_for_url(lambda url: url.rstrip("/").endswith("/o/acme") or "/o/acme/" in url)
    assert "Pins of Acme" in page.content()
    records = Authenticator.objects.get(user=world.admin, type=Authenticator.Type.WEBAUTHN)
    assert records.last_used_at is not None

"""Second factors with django-allauth's MFA: TOTP with recovery codes through the portal's sign-in,
and an organisation that requires admins to have one. (Passkeys run in Chromium with its virtual
authenticator: tests/browser/test_identity.py.)"""

from __future__ import annotations

import re
import time

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core.cache import cache

from contracts.identity import services as identity_services
from contracts.models import Membership, Role

pytestmark = pytest.mark.django_db


def totp(secret: str, at: float | None = None) -> str:
    return format_hotp_value(hotp_value(secret, int(at or time.time()) // 30))


def sign_in(client, username: str = "acme-admin"):
    return client.post("/accounts/login/", {"username": username, "password": "pw-for-tests-1"})


def enrol_totp(client) -> str:
    """Reauthenticate, read the secret off the activation page, activate with a code."""
    client.post("/accounts/reauthenticate/", {"password": "pw-for-tests-1"})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200, page
    secret = re.search(r'id="authenticator_secret"[^>]*value="([A-Z2-7]+)"', page.content.decode()).group(1)
    response = client.post("/accounts/2fa/totp/activate/", {"code": totp(secret)})
    assert response.status_code == 302, response.content[:2000]
    return secret


def test_totp_is_asked_for_after_the_password_and_recovery_codes_work_once(client, world):
    sign_in(client)
    secret = enrol_totp(client)
    codes = RecoveryCodes(
        Authenticator.objects.get(user=world.admin, type="recovery_codes")
    ).get_unused_codes()
    assert len(codes) >= 5
    client.post("/accounts/logout/")

    response = sign_in(client)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/authenticate/")
    assert client.get("/o/acme/").status_code == 302  # not signed in until the second factor
    assert client.post("/accounts/2fa/authenticate/", {"code": "000000"}).status_code == 200
    with time_machine.travel(time.time() + 31, tick=False):  # a code is accepted once per window
        response = client.post("/accounts/2fa/authenticate/", {"code": totp(secret, time.time())})
    assert response.status_code == 302
    assert client.get("/o/acme/").status_code == 200

    client.post("/accounts/logout/")
    sign_in(client)
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 302
    assert client.get("/o/acme/").status_code == 200
    client.post("/accounts/logout/")
    sign_in(client)
    assert client.post("/accounts/2fa/authenticate/", {"code": codes[0]}).status_code == 200  # used up
    assert client.get("/o/acme/").status_code == 302


def _require_mfa(world):
    identity_services.sso_policy_set(
        org=world.org,
        require_sso=False,
        require_mfa_for_admins=True,
        default_role="member",
        acting_user=world.admin,
    )
    cache.clear()


def test_an_organisation_can_require_admins_to_enrol_a_second_factor(client, world):
    _require_mfa(world)
    sign_in(client)
    response = client.get("/o/acme/")
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/"
    enrol_totp(client)
    assert client.get("/o/acme/").status_code == 200

    other = client.__class__()
    sign_in(other, "acme-member")  # members are not asked
    assert other.get("/o/acme/").status_code == 200


def test_the_policy_applies_to_an_admin_promoted_later(client, world):
    _require_mfa(world)
    sign_in(client, "acme-legal")
    assert client.get("/o/acme/").status_code == 200
    identity_services.member_role_change(
        membership=Membership.objects.get(user=world.legal, organization=world.org),
        role=Role.ADMIN,
        acting_user=world.admin,
    )
    cache.clear()
    assert client.get("/o/acme/")["Location"] == "/accounts/2fa/"


def test_another_users_passkey_is_404_after_reauthentication(client, world):
    key = Authenticator.objects.create(
        user=world.admin, type=Authenticator.Type.WEBAUTHN, data={"name": "k", "credential": {}}
    )
    sign_in(client, "globex-admin")
    client.post("/accounts/reauthenticate/", {"password": "pw-for-tests-1"})
    assert client.get(f"/accounts/2fa/webauthn/keys/{key.pk}/remove/").status_code == 404
    assert client.post(f"/accounts/2fa/webauthn/keys/{key.pk}/remove/").status_code == 404
    assert Authenticator.objects.filter(pk=key.pk).exists()

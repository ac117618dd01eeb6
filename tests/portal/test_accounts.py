"""Accounts: sign in and out, password reset through the outbox, the organisation switcher,
roles shaping what is offered, and login attempts limited by django-axes."""

from __future__ import annotations

import re

import pytest
from django.core import mail

from contracts import models
from tests import factories as f

pytestmark = pytest.mark.django_db


def test_sign_in_sends_a_single_organisation_user_to_their_dashboard(world, client):
    response = client.post(
        "/accounts/login/", {"username": "acme-admin", "password": "pw-for-tests-1"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/o/acme/"
    assert "Pins of Acme" in response.content.decode()


def test_wrong_password_shows_an_error_and_does_not_sign_in(world, client):
    response = client.post("/accounts/login/", {"username": "acme-admin", "password": "nope"})
    assert response.status_code == 200 and "did not match" in response.content.decode()
    assert client.get("/o/acme/").status_code == 302


def test_sign_out_ends_the_session(world, client):
    client.force_login(world.admin)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert client.get("/o/acme/").status_code == 302


def test_password_reset_mails_a_link_that_sets_a_new_password(world, client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post("/accounts/password_reset/", {"email": world.admin.email}, follow=True)
    assert "Check your e-mail" in response.content.decode()
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert (
        message.to == [world.admin.email] and "Reset your Version Contract Portal password" in message.subject
    )
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body).group(1)
    form = client.get(link, follow=True)
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "a-New-pass-2026", "new_password2": "a-New-pass-2026"},
        follow=True,
    )
    assert "Password changed" in done.content.decode()
    world.admin.refresh_from_db()
    assert world.admin.check_password("a-New-pass-2026")


def test_password_reset_email_lands_in_the_dev_outbox(world, client, settings, tmp_path):
    settings.EMAIL_BACKEND = "notifications.mail.OutboxEmailBackend"
    settings.OUTBOX_DIR = tmp_path
    client.post("/accounts/password_reset/", {"email": world.admin.email})
    files = list(tmp_path.glob("*.eml"))
    assert len(files) == 1 and b"/accounts/reset/" in files[0].read_bytes()


def test_password_reset_for_an_unknown_address_says_the_same_and_sends_nothing(world, client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post("/accounts/password_reset/", {"email": "nobody@example.com"}, follow=True)
    assert "Check your e-mail" in response.content.decode() and mail.outbox == []


@pytest.fixture
def consultant(world):
    user = f.UserFactory(username="consultant")
    f.MembershipFactory(user=user, organization=world.org, role=models.Role.LEGAL)
    f.MembershipFactory(user=user, organization=world.other_org, role=models.Role.ADMIN)
    return user


def test_a_user_of_several_organisations_chooses_and_switches(consultant, client):
    response = client.post(
        "/accounts/login/", {"username": "consultant", "password": "pw-for-tests-1"}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/orgs/"
    chooser = response.content.decode()
    assert "/o/acme/" in chooser and "/o/globex/" in chooser and "Legal" in chooser and "Admin" in chooser
    acme = client.get("/o/acme/").content.decode()
    assert 'class="org-switcher"' in acme and 'href="/o/globex/"' in acme
    assert 'aria-current="true">Acme' in acme
    globex = client.get("/o/globex/").content.decode()
    assert 'aria-current="true">Globex' in globex


def test_role_shapes_what_is_offered_per_organisation(consultant, client):
    client.force_login(consultant)
    assert '<select id="policy-' not in client.get("/o/acme/settings/").content.decode()  # legal in acme
    assert '<select id="policy-' in client.get("/o/globex/settings/").content.decode()  # admin in globex
    assert client.get("/o/acme/settings/keys/").status_code == 403
    assert client.get("/o/globex/settings/keys/").status_code == 200


def test_single_organisation_user_sees_no_switcher(world, client):
    client.force_login(world.admin)
    assert 'class="org-switcher"' not in client.get("/o/acme/").content.decode()


def test_user_without_organisation_is_told_so(db, client):
    client.force_login(f.UserFactory(username="lonely"))
    assert "No organisation yet" in client.get("/", follow=True).content.decode()


def test_logins_are_locked_out_after_the_failure_limit(world, client, settings):
    settings.AXES_ENABLED = True
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit):
        client.post(
            "/accounts/login/", {"username": "acme-admin", "password": "wrong"}, REMOTE_ADDR="10.0.0.9"
        )
    locked = client.post(
        "/accounts/login/", {"username": "acme-admin", "password": "pw-for-tests-1"}, REMOTE_ADDR="10.0.0.9"
    )
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_pages_carry_a_strict_content_security_policy(world, client):
    client.force_login(world.admin)
    for url in ("/o/acme/", "/o/acme/timeline/", "/o/acme/changelog/", "/accounts/login/"):
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        script_src = re.search(r"script-src ([^;]*)", policy).group(1)
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
        body = response.content.decode()
        assert " style=" not in body and "<style" not in body
        assert not re.search(r"<script(?![^>]*\bsrc=)", body), url
        assert not re.search(r"\son[a-z]+=", body), url


def test_error_pages_use_the_portal_layout(world, client):
    client.force_login(world.admin)
    response = client.get("/o/acme/snapshots/does-not-exist/")
    assert response.status_code == 404 and "Back to your pins" in response.content.decode()

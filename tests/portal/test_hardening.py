"""The outside attack of issue #15, replayed against the portal: each attack is refused.

1. account takeover through the dev outbox; password-reset flooding
2. the published default SECRET_KEY; ack and unsubscribe tokens without a maximum age
6. unmatched /api/ paths answering HTML; deep, oversized and non-object JSON
8. control characters in portal forms; IP/User-Agent shown to members; Permissions-Policy
(3, 4, 5 and 7 are tested where their code lives: tests/notifications/test_webhook_ssrf.py,
tests/contracts/test_csv_injection.py, tests/contracts/test_ledger_rewrites.py, the export and diff
API tests; the attack walk over every route is tests/portal/test_tenancy.py.)
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import time_machine
from django.core import mail, signing
from django.core.mail import EmailMessage
from django.urls import clear_url_caches

from contracts.errors import NotFound
from contracts.ledger.chain import ledger_append
from contracts.models import ApiKey, ConsentRecord
from notifications import emails
from notifications import services as notification_services
from notifications.models import Contact, Unsubscription

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


# 1. The dev outbox ------------------------------------------------------------------------------


@pytest.fixture
def outbox(settings, tmp_path):
    """/outbox/ as `make run` mounts it (DEBUG on), over a fresh outbox folder."""
    import portal.urls

    settings.DEBUG = True
    settings.EMAIL_BACKEND = "notifications.mail.OutboxEmailBackend"
    settings.OUTBOX_DIR = tmp_path
    importlib.reload(portal.urls)
    clear_url_caches()
    yield tmp_path
    settings.DEBUG = False
    importlib.reload(portal.urls)
    clear_url_caches()


def test_an_anonymous_visitor_cannot_read_a_reset_link_from_the_outbox(world, client, outbox):
    """The attack: request a reset for the admin, then read the link at /outbox/."""
    client.post("/accounts/password_reset/", {"email": world.admin.email})
    assert len(list(outbox.glob("*.eml"))) == 1
    response = client.get("/outbox/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert b"/accounts/reset/" not in response.content


def test_a_signed_in_member_reads_only_mail_addressed_to_them(world, client, outbox):
    client.post("/accounts/password_reset/", {"email": world.admin.email})
    EmailMessage("For the member", "hello member", to=[world.member.email]).send()
    client.force_login(world.member)
    page = client.get("/outbox/").content.decode()
    assert "For the member" in page and "/accounts/reset/" not in page and world.admin.email not in page


def test_staff_read_every_message(world, client, outbox):
    from tests import factories as f

    client.post("/accounts/password_reset/", {"email": world.admin.email})
    EmailMessage("For the member", "hello member", to=[world.member.email]).send()
    client.force_login(f.UserFactory(username="operator", is_staff=True))
    page = client.get("/outbox/").content.decode()
    assert "For the member" in page and "/accounts/reset/" in page


def test_password_reset_requests_are_limited_per_address(world, client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    for n in range(settings.PASSWORD_RESET_LIMIT_PER_EMAIL):
        client.post("/accounts/password_reset/", {"email": world.admin.email}, REMOTE_ADDR=f"198.51.100.{n}")
    assert len(mail.outbox) == settings.PASSWORD_RESET_LIMIT_PER_EMAIL
    refused = client.post(
        "/accounts/password_reset/", {"email": world.admin.email}, REMOTE_ADDR="203.0.113.9"
    )
    assert refused.status_code == 429 and "Too many password reset requests" in refused.content.decode()
    assert world.admin.email in refused.content.decode()  # what was typed is kept
    assert len(mail.outbox) == settings.PASSWORD_RESET_LIMIT_PER_EMAIL


def test_password_reset_requests_are_limited_per_client(world, client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PASSWORD_RESET_LIMIT_PER_CLIENT = 4
    for n in range(4):
        assert (
            client.post("/accounts/password_reset/", {"email": f"nobody{n}@example.com"}).status_code == 302
        )
    refused = client.post("/accounts/password_reset/", {"email": world.admin.email})
    assert refused.status_code == 429 and mail.outbox == []


# 2. SECRET_KEY and token ages ---------------------------------------------------------------------


def _start(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "SECRET_KEY", "DEBUG")}
    clean.update(env)
    code = "import django; django.setup(); print('started')"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, "DJANGO_SETTINGS_MODULE": "portal.settings"},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_portal_refuses_to_start_without_debug_on_the_published_key():
    refused = _start(DEBUG="0")
    assert refused.returncode != 0 and "started" not in refused.stdout
    assert "SECRET_KEY is not set and DEBUG is off" in refused.stderr
    assert _start(DEBUG="0", SECRET_KEY="a-real-secret-" + "x" * 40).stdout.strip() == "started"
    assert _start(DEBUG="1").stdout.strip() == "started"


def test_an_unsubscribe_link_expires_after_its_maximum_age(world, client, settings):
    with time_machine.travel(
        dt.datetime.now(dt.UTC) - dt.timedelta(days=settings.UNSUBSCRIBE_TOKEN_MAX_AGE_DAYS + 1)
    ):
        old = emails.unsubscribe_token(org_id=world.org.pk, email="reader@acme.example")
    fresh = emails.unsubscribe_token(org_id=world.org.pk, email="reader@acme.example")
    response = client.post(f"/notices/unsubscribe/{old}/")
    assert response.status_code == 404 and "expired" in response.content.decode()
    assert not Unsubscription.objects.exists()
    assert client.post(f"/notices/unsubscribe/{fresh}/").status_code == 200
    assert Unsubscription.objects.count() == 1


def test_an_acknowledgement_link_expires_after_its_maximum_age(settings):
    token = signing.dumps({"n": 1, "e": "legal@acme.example"}, salt=emails.ACK_SALT)
    with (
        time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=settings.ACK_TOKEN_MAX_AGE_DAYS + 1)),
        pytest.raises(NotFound) as expired,
    ):
        notification_services.ack_token_load(token)
    assert "expired" in expired.value.message


def test_a_token_signed_with_another_key_is_refused(world, client):
    forged = signing.dumps(
        {"o": world.org.pk, "e": "x@acme.example"}, key="guessed", salt=emails.UNSUBSCRIBE_SALT
    )
    assert client.post(f"/notices/unsubscribe/{forged}/").status_code == 404


# 6. The API's answers to bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nope/", "/api/v1/migrations/abc/", "/api/v1/snapshots/bad%20id!/", "/api/v1/aliases/%00/history/",
     "/api/", "/api/v2/pins/", "/api/v1/diffs/a..b/"],
)  # fmt: skip
@pytest.mark.parametrize("debug", [False, True])
def test_an_unmatched_api_path_answers_the_json_envelope(world, api, settings, path, debug):
    settings.DEBUG = debug
    response = api.get(path, key=world.key)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == "not_found"


def test_a_page_path_still_answers_the_html_404(world, client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")


def _bodies(settings):
    return {
        "deep list": "[" * 100_000 + "]" * 100_000,
        "deep object": '{"a":' * 50_000 + "1" + "}" * 50_000,
        "just over the depth limit": '{"a":' * settings.API_MAX_JSON_DEPTH
        + "{}"
        + "}" * settings.API_MAX_JSON_DEPTH,
        "a list": '["alias", "v1-chat"]',
        "a string": '"v1-chat"',
        "a number": "42",
        "null": "null",
        "NUL in a string": '{"alias": "v1\\u0000chat", "observed_at": "2025-01-01T00:00:00Z"}',
        "escape in a key": '{"\\u001b[31m": 1}',
        "oversized": '{"alias": "' + "x" * (settings.API_MAX_BODY_BYTES + 1) + '"}',
        "not JSON": "{'alias': 1}",
        "not UTF-8": b'{"alias": "\xff\xfe"}',
    }


@pytest.mark.parametrize(
    "name",
    ["deep list", "deep object", "just over the depth limit", "a list", "a string", "a number", "null",
     "NUL in a string", "escape in a key", "oversized", "not JSON", "not UTF-8"],
)  # fmt: skip
def test_bad_json_bodies_are_a_400_in_the_envelope_and_write_nothing(world, client, settings, name):
    body = _bodies(settings)[name]
    before = ConsentRecord.objects.count(), ApiKey.objects.count()
    from contracts.models import BugReport

    response = client.post(
        "/api/v1/bug-reports/", data=body, content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {world.key}",
    )  # fmt: skip
    assert response.status_code == 400, response.content[:200]
    assert response["Content-Type"] == "application/json" and set(response.json()["error"]) == {
        "code", "message", "fields",
    }  # fmt: skip
    assert (
        ConsentRecord.objects.count(),
        ApiKey.objects.count(),
    ) == before and not BugReport.objects.exists()


def test_json_at_the_depth_limit_is_accepted(world, api, settings):
    from contracts.http import json_check

    nested: dict = {}
    for _ in range(settings.API_MAX_JSON_DEPTH - 1):
        nested = {"a": nested}
    json_check(nested, max_depth=settings.API_MAX_JSON_DEPTH)
    response = api.post("/api/v1/migrations/999/consent/", data=nested, key=world.key)
    assert response.status_code == 404  # parsed, then the migration is not found


# 8. Smaller findings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fields", "count"),
    [
        ("/o/acme/notifications/contacts/", {"email": "a@acme.example", "name": "Eve\x00Admin"}, lambda: Contact.objects.count()),
        ("/o/acme/notifications/contacts/", {"email": "a@acme.example\x1b[2J", "name": "x"}, lambda: Contact.objects.count()),
        ("/o/acme/settings/keys/new/", {"name": "deploy\x07key"}, lambda: ApiKey.objects.count()),
        ("/o/acme/settings/keys/new/", {"name": "right-to-left\x85"}, lambda: ApiKey.objects.count()),
    ],
)  # fmt: skip
def test_control_characters_in_portal_form_fields_are_refused_and_write_nothing(
    world, client, url, fields, count
):
    client.force_login(world.admin)
    before = count()
    response = client.post(url, fields)
    assert response.status_code == 400
    bad = next(name for name, value in fields.items() if re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", value))
    assert bad in response.content.decode() and "control characters" in response.content.decode()
    assert count() == before


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/o/acme/?q=%00", "q"),
        ("/o/acme/migrations/?state=%00", "state"),
        ("/o/acme/bugs/?q=a%1bb", "q"),
        ("/o/acme/changelog/?q=%7f", "q"),
    ],
)
def test_control_characters_in_page_queries_are_a_400_naming_the_field(world, client, url, field):
    """Searches and filters of portal pages: PostgreSQL cannot compare a text holding NUL, and no
    search needs a control character; the page answers 400 naming the field, not a 500."""
    client.force_login(world.admin)
    response = client.get(url)
    assert response.status_code == 400
    assert field in response.content.decode() and "control characters" in response.content.decode()


def test_tabs_and_newlines_stay_allowed_in_forms(world, client):
    client.force_login(world.admin)
    response = client.post("/o/acme/settings/keys/new/", {"name": "deploy\tkey"})
    assert response.status_code != 400


def test_htmx_gets_the_refusal_in_the_envelope(world, client):
    client.force_login(world.admin)
    response = client.post(
        "/o/acme/settings/keys/new/", {"name": "\x00"}, HTTP_HX_REQUEST="true", HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400 and response.json()["error"]["fields"] == {
        "name": "must not contain control characters (such as NUL)"
    }


@pytest.fixture
def record(world):
    return ledger_append(
        org=world.org,
        action="consent",
        acting_user=world.admin,
        ip="198.51.100.23",
        user_agent="Agent/7 (secret-ua)",
    )


@pytest.mark.parametrize(("who", "sees"), [("member", False), ("admin", True), ("legal", True)])
def test_ip_and_user_agent_are_shown_only_to_roles_that_may_export_them(world, client, record, who, sees):
    client.force_login(getattr(world, who))
    page = client.get("/o/acme/consents/").content.decode()
    assert ("198.51.100.23" in page, "secret-ua" in page) == (sees, sees)
    body = client.get("/api/v1/consents/").json()["results"][0]
    assert (body["ip"], body["user_agent"]) == (
        ("198.51.100.23", "Agent/7 (secret-ua)") if sees else (None, None)
    )
    assert body["hash"] == record.hash


def test_an_organisation_key_sees_ip_and_user_agent(world, api, record):
    assert api.get("/api/v1/consents/", key=world.key).json()["results"][0]["ip"] == "198.51.100.23"


@pytest.mark.parametrize("path", ["/accounts/login/", "/api/v1/pins/", "/api/v1/nope/", "/healthz"])
def test_every_response_carries_a_permissions_policy(world, api, path):
    policy = api.get(path, key=world.key)["Permissions-Policy"]
    assert "camera=()" in policy and "geolocation=()" in policy and "microphone=()" in policy

"""Legal's path (issue #13, item 7): the chain verification is a page with the JSON one click away,
the standalone verifier downloads from the exports page, ledger actions read in words."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contracts.consent import services
from contracts.ledger import verify_bundle_standalone
from tests.contracts.ledger_helpers import accept, decider, make_terms, propose

pytestmark = pytest.mark.django_db


def test_verify_the_chain_opens_a_page_with_the_json_one_click_away(world, client):
    accept(world.org, make_terms("2025-09"), world.admin)
    client.force_login(world.legal)
    history = client.get("/o/acme/consents/").content.decode()
    assert 'href="/o/acme/consents/verify/"' in history
    page = client.get("/o/acme/consents/verify/")
    html = page.content.decode()
    assert page.status_code == 200 and "The chain is intact." in html
    assert 'href="/api/v1/consents/verify/?org=acme"' in html
    client.force_login(world.outsider)
    assert client.get("/o/acme/consents/verify/").status_code == 404


def test_the_standalone_verifier_downloads_from_the_exports_page(world, client):
    client.force_login(world.legal)
    assert 'href="/o/acme/exports/verify_bundle.py"' in client.get("/o/acme/exports/").content.decode()
    response = client.get("/o/acme/exports/verify_bundle.py")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="verify_bundle.py"'
    with open(verify_bundle_standalone.__file__, "rb") as source:
        assert response.content == source.read()


def test_ledger_actions_are_named_in_words_with_their_details(world, client):
    accept(world.org, make_terms("2025-09", max_deferral_days=60), world.admin)
    until = (timezone.now() + dt.timedelta(days=10)).replace(hour=9, minute=30, second=0, microsecond=0)
    services.migration_defer(migration=propose(world), decider=decider(world.admin), until=until)
    client.force_login(world.legal)
    html = client.get("/o/acme/consents/").content.decode()
    assert "<strong>Deferred a migration</strong>" in html
    assert f"Deferred until {until.day} {until:%B %Y}, 09:30 UTC" in html
    assert "<strong>Accepted contract terms</strong>" in html

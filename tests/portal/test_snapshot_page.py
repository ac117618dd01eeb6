"""The snapshot page: lifecycle dates with their time zone, digest, config, changelog, this
organisation's pins on it, the replacement and the alias history that involved it."""

from __future__ import annotations

import re

import pytest

from contracts import models
from contracts.catalog import services
from contracts.templatetags.instants import instant
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def deprecated(world):
    services.snapshot_update(
        snapshot=world.old,
        data={
            "deprecated_at": f.days(-5),
            "retires_at": f.days(25),
            "retention_until": f.days(300),
            "replacement": world.current,
        },
    )
    models.ChangelogEntry.objects.create(
        snapshot=world.old, kind="breaking", title="Tokenizer v2", body="Counts differ."
    )
    world.old.refresh_from_db()
    return world


def test_snapshot_page_shows_lifecycle_digest_config_changelog_pins_replacement_and_alias_history(
    deprecated, client
):
    w = deprecated
    client.force_login(w.member)
    response = client.get(f"/o/acme/snapshots/{w.old.name}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert w.old.digest in html
    assert "context_window" in html and "8192" in html
    assert instant(w.old.retires_at) in html
    assert "Deprecated:" in html
    assert re.search(r"stops serving in 2[45] days", html)
    assert "Tokenizer v2" in html and "Breaking" in html
    assert "Recommended replacement" in html and f"/o/acme/snapshots/{w.current.name}/" in html
    assert "v1-chat" in html and "Manual (moves only with consent)" in html  # acme's pin on it
    assert "new default" in html and "created" in html  # the alias moves that involved it
    assert "Your pin changes involving it" in html


def test_snapshot_page_does_not_list_pins_of_other_organisations(world, client):
    client.force_login(world.admin)
    html = client.get(f"/o/acme/snapshots/{world.current.name}/").content.decode()
    assert (
        "None of Acme&#x27;s pins use this snapshot" in html
        or "None of Acme's pins use this snapshot" in html
    )
    assert "globex" not in html.lower()


def test_unknown_or_unpublished_snapshot_is_404(world, client):
    draft = f.SnapshotFactory(family=world.family, name="chat-draft", published_at=None)
    client.force_login(world.admin)
    assert client.get("/o/acme/snapshots/nope/").status_code == 404
    assert client.get(f"/o/acme/snapshots/{draft.name}/").status_code == 404


def test_snapshot_page_under_a_foreign_organisation_slug_is_404(world, client):
    client.force_login(world.outsider)
    assert client.get(f"/o/acme/snapshots/{world.old.name}/").status_code == 404
    assert client.get(f"/o/globex/snapshots/{world.old.name}/").status_code == 200

"""The changelog: across families, filtered by family and kind, paginated with htmx (and plain
links), an "only what affects my pins" toggle, and an Atom feed behind the session."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from contracts import models
from tests import factories as f

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def entries(world):
    embed = f.FamilyFactory(slug="embed", name="Embeddings")
    embed_snap = f.SnapshotFactory(family=embed, name="embed-1", released_at=f.days(-40))
    unpinned_family = f.FamilyFactory(slug="code", name="Code")
    code_snap = f.SnapshotFactory(family=unpinned_family, name="code-1", released_at=f.days(-20))
    newer = f.SnapshotFactory(family=world.family, name="chat-2025-12-01", released_at=f.days(-5))
    draft = f.SnapshotFactory(
        family=world.family, name="chat-draft", published_at=None, released_at=f.days(10)
    )
    make = models.ChangelogEntry.objects.create
    make(snapshot=world.old, kind="fix", title="Old fix", published_at=f.days(-199))
    make(snapshot=world.current, kind="breaking", title="New tokenizer", published_at=f.days(-99))
    make(snapshot=newer, kind="cost", title="Price cut", published_at=f.days(-4))
    make(snapshot=embed_snap, kind="behaviour", title="Normalised vectors", published_at=f.days(-39))
    make(snapshot=code_snap, kind="safety", title="Code safety", published_at=f.days(-19))
    make(snapshot=draft, kind="breaking", title="Unreleased secret", published_at=f.days(-1))
    return world


def html(client, url, **headers):
    response = client.get(url, **headers)
    assert response.status_code == 200
    return response.content.decode()


def test_changelog_lists_published_entries_across_families_newest_first(entries, client):
    client.force_login(entries.member)
    page = html(client, "/o/acme/changelog/")
    titles = ["Price cut", "Code safety", "Normalised vectors", "New tokenizer", "Old fix"]
    positions = [page.index(title) for title in titles]
    assert positions == sorted(positions)
    assert "Unreleased secret" not in page
    assert "Breaking" in page and "Cost" in page


def test_changelog_filters_by_family_and_kind(entries, client):
    client.force_login(entries.member)
    chat = html(client, "/o/acme/changelog/?family=chat")
    assert "New tokenizer" in chat and "Normalised vectors" not in chat
    breaking = html(client, "/o/acme/changelog/?kind=breaking")
    assert "New tokenizer" in breaking and "Price cut" not in breaking and "Code safety" not in breaking


def test_only_what_affects_my_pins_is_newer_entries_in_the_families_of_my_pins(entries, client):
    # acme pins v1-chat to chat-2025-01-01: newer chat entries affect it; code (not pinned) does not.
    client.force_login(entries.member)
    mine = html(client, "/o/acme/changelog/?mine=1")
    assert "New tokenizer" in mine and "Price cut" in mine
    assert "Old fix" not in mine and "Code safety" not in mine and "Normalised vectors" not in mine
    assert "affecting your pins" in mine


def test_changelog_paginates_with_htmx_load_more_and_plain_links(entries, client):
    snap = entries.current
    for i in range(20):
        models.ChangelogEntry.objects.create(
            snapshot=snap, kind="fix", title=f"Bulk fix {i:02d}", published_at=f.days(-50 - i)
        )
    client.force_login(entries.member)
    first = html(client, "/o/acme/changelog/")
    assert 'id="load-more"' in first and 'href="?page=2"' in first and 'hx-get="?page=2"' in first
    more = html(client, "/o/acme/changelog/?page=2", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="load-more")
    assert "<html" not in more and "<section" not in more and 'class="entry"' in more
    assert "Old fix" in more
    plain = html(client, "/o/acme/changelog/?page=2")
    assert "<html" in plain and "Newer entries" in plain


def test_htmx_filter_change_swaps_the_entry_list(entries, client):
    client.force_login(entries.member)
    fragment = html(
        client, "/o/acme/changelog/?kind=cost", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="changelog-entries"
    )
    assert fragment.lstrip().startswith('<section id="changelog-entries"')
    assert "Price cut" in fragment and "New tokenizer" not in fragment


def test_atom_feed_is_valid_atom_with_entries_and_respects_filters(entries, client):
    client.force_login(entries.member)
    response = client.get("/o/acme/changelog/feed.atom")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/atom+xml")
    feed = ET.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    titles = [e.find(f"{ATOM}title").text for e in feed.findall(f"{ATOM}entry")]
    assert len(titles) == 5 and any("Price cut" in t for t in titles)
    assert all(e.find(f"{ATOM}id").text for e in feed.findall(f"{ATOM}entry"))
    mine = ET.fromstring(client.get("/o/acme/changelog/feed.atom?mine=1&kind=breaking").content)
    assert [e.find(f"{ATOM}title").text for e in mine.findall(f"{ATOM}entry")] == [
        "[Breaking] chat-2025-06-01: New tokenizer"
    ]


def test_changelog_page_links_its_atom_feed(entries, client):
    client.force_login(entries.member)
    page = html(client, "/o/acme/changelog/?family=chat")
    assert 'rel="alternate" type="application/atom+xml"' in page
    assert 'href="/o/acme/changelog/feed.atom?family=chat' in page


def test_feed_needs_a_session_and_membership(entries, client):
    response = client.get("/o/acme/changelog/feed.atom")
    assert response.status_code == 302
    client.force_login(entries.outsider)
    assert client.get("/o/acme/changelog/feed.atom").status_code == 404
    assert client.get("/o/acme/changelog/").status_code == 404

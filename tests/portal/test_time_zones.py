"""Pages show instants in the reader's time zone, named, to the minute; the preferences page changes
it; the API keeps answering in UTC; templates format instants in one way only."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from contracts.models import UserPreference
from tests.contracts.ledger_helpers import accept, make_terms, propose

pytestmark = pytest.mark.django_db

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def test_pages_show_utc_until_the_reader_chooses_a_zone_and_then_show_it(world, client):
    client.force_login(world.admin)
    released = world.old.released_at
    page = client.get(f"/o/acme/snapshots/{world.old.name}/").content.decode()
    assert "Times are shown in UTC" in page
    assert f"{released.day} {released:%b %Y}, {released:%H:%M} UTC" in page

    response = client.post("/accounts/preferences/save/", {"time_zone": "Asia/Kolkata"})
    assert response.status_code == 302
    page = client.get(f"/o/acme/snapshots/{world.old.name}/").content.decode()
    local = released.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata"))
    assert f"{local.day} {local:%b %Y}, {local:%H:%M} IST" in page
    assert "Times are shown in Asia/Kolkata (IST)" in page


def test_the_zone_follows_the_person_into_a_new_session(world, client):
    UserPreference.objects.create(user=world.admin, time_zone="Europe/Paris")
    client.force_login(world.admin)
    assert "Times are shown in Europe/Paris (CET)" in client.get("/o/acme/").content.decode()


def test_preferences_page_offers_the_zones_with_the_current_one_selected(world, client):
    client.force_login(world.member)
    html = client.get("/accounts/preferences/").content.decode()
    assert '<label for="time-zone">Time zone</label>' in html
    assert '<option value="UTC" selected>' in html
    assert '<option value="Europe/Paris">' in html


def test_an_unknown_zone_is_a_form_error_on_the_same_page_with_what_was_typed_kept(world, client):
    client.force_login(world.member)
    response = client.post("/accounts/preferences/save/", {"time_zone": "Mars/Olympus"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "is not a time zone this portal knows" in html
    assert '<option value="Mars/Olympus" selected>' in html and 'aria-invalid="true"' in html
    assert not UserPreference.objects.filter(user=world.member).exists()


def test_saving_goes_back_to_the_page_it_came_from_on_this_site_only(world, client):
    client.force_login(world.member)
    back = client.post("/accounts/preferences/save/", {"time_zone": "UTC", "next": "/o/acme/timeline/"})
    assert back["Location"] == "/o/acme/timeline/"
    away = client.post("/accounts/preferences/save/", {"time_zone": "UTC", "next": "//evil.example/"})
    assert away["Location"] == "/accounts/preferences/"


def test_preferences_need_a_sign_in(client):
    assert client.get("/accounts/preferences/").status_code == 302
    assert client.post("/accounts/preferences/save/", {"time_zone": "UTC"}).status_code == 302


def test_the_api_answers_in_utc_whatever_the_session_reader_chose(world, client):
    UserPreference.objects.create(user=world.admin, time_zone="Asia/Tokyo")
    client.force_login(world.admin)
    client.get("/o/acme/")  # the page session now carries Asia/Tokyo
    body = client.get("/api/v1/pins/").json()
    stamps = re.findall(r'"\d{4}-\d{2}-\d{2}T[^"]+"', str(body).replace("'", '"'))
    assert stamps and all(s.endswith(('Z"', '+00:00"')) for s in stamps), stamps


def test_page_templates_format_instants_only_with_the_instant_filter():
    """`|date:` is allowed only for machine values (datetime attributes, input bounds)."""
    offenders = []
    for path in TEMPLATES.rglob("*.html"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in re.finditer(r"\|date:(['\"])(.*?)\1", line):
                if match.group(2) not in ("c", "Y-m-d"):
                    offenders.append(f"{path.relative_to(TEMPLATES)}:{number}: {match.group(0)}")
                elif match.group(2) == "Y-m-d" and not re.search(
                    r'(max|min|value)="[^"]*$', line[: match.start()]
                ):
                    offenders.append(
                        f"{path.relative_to(TEMPLATES)}:{number}: {match.group(0)} outside an input"
                    )
            if re.search(r"\bUTC\)?</t[hd]>|\(UTC\)", line):
                offenders.append(f"{path.relative_to(TEMPLATES)}:{number}: a fixed UTC label")
    assert offenders == []


def test_a_time_typed_on_a_page_is_read_in_the_zone_the_page_names(world, client):
    UserPreference.objects.create(user=world.admin, time_zone="Europe/Paris")
    terms = make_terms("2025-09")
    accept(world.org, terms, world.admin)
    migration = propose(world)
    client.force_login(world.admin)
    form = client.get(f"/o/acme/migrations/{migration.pk}/consent/").content.decode()
    assert "Schedule for (optional, Europe/Paris (CET), before the deadline)" in form
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    when = (
        (timezone.now() + dt.timedelta(days=3))
        .astimezone(paris)
        .replace(hour=10, minute=0, second=0, microsecond=0)
    )
    client.post(
        f"/o/acme/migrations/{migration.pk}/consent/",
        {"at": when.strftime("%Y-%m-%dT%H:%M"), "terms_sha256": terms.body_sha256},
    )
    migration.refresh_from_db()
    assert migration.scheduled_for == when  # 10:00 in Paris, not 10:00 UTC


def test_the_bug_form_starts_on_the_readers_zone(world, client):
    UserPreference.objects.create(user=world.admin, time_zone="Asia/Kolkata")
    client.force_login(world.admin)
    html = client.get("/o/acme/bugs/").content.decode()
    assert '<option value="Asia/Kolkata" selected>' in html

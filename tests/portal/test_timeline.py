"""The timeline: an SVG per family drawn on the server, today's line, this organisation's pins
highlighted with more than colour, notice milestones from the accepted terms, and a text table."""

from __future__ import annotations

import datetime as dt
import itertools
import re

import pytest
from django.utils import timezone

from contracts import models
from contracts.catalog import services
from contracts.templatetags.instants import instant
from portal.views.catalog import build_timelines
from tests import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def retiring(world):
    services.snapshot_update(
        snapshot=world.old,
        data={"deprecated_at": f.days(-5), "retires_at": f.days(100), "retention_until": f.days(400)},
    )
    world.old.refresh_from_db()
    return world


def accept_terms(org, min_notice_days):
    terms = models.ContractTerms.objects.create(
        version=f"t{min_notice_days}",
        title="Terms",
        body="b",
        body_sha256=models.ContractTerms.hash_body("b"),
        effective_at=f.days(-400),
        min_notice_days=min_notice_days,
        retired_bug_policy="p",
    )
    org.accepted_terms = terms
    org.save(update_fields=["accepted_terms"])


def test_timeline_page_renders_an_svg_per_family_with_today_pins_and_a_table(retiring, client):
    f.SnapshotFactory(
        family=f.FamilyFactory(slug="code", name="Code"), name="code-1", released_at=f.days(-10)
    )
    client.force_login(retiring.member)
    response = client.get("/o/acme/timeline/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<svg class="timeline-svg"') == 2
    assert 'data-family="chat"' in html and 'data-family="code"' in html
    assert 'class="today"' in html and ">Today<" in html
    assert "PINNED · v1-chat" in html and "★ chat-2025-01-01" in html  # a label and a marker, not only colour
    assert 'fill="url(#tl-deprecated)"' in html and 'fill="url(#tl-retention)"' in html
    assert "timeline as a table" in html and "<strong>Pinned:</strong> v1-chat" in html
    assert 'role="group"' in html and "<desc" in html  # a group, not an image: it holds links
    assert "style=" not in html  # strict CSP: no inline styles
    assert 'aria-current="page">Timeline' in html


def test_notice_milestones_use_the_default_90_days_without_terms(retiring):
    now = timezone.now()
    timelines, notice_days, _ = build_timelines(org=retiring.org, now=now)
    assert notice_days == 90
    row = next(r for r in timelines[0].rows if r.snapshot == retiring.old)
    assert [m.short for m in row.milestones] == ["T-90", "T-30", "T-7"]
    assert row.milestones[0].when == retiring.old.retires_at - dt.timedelta(days=90)


def test_notice_milestones_come_from_the_accepted_terms(retiring, client):
    accept_terms(retiring.org, 120)
    timelines, notice_days, _ = build_timelines(org=retiring.org, now=timezone.now())
    assert notice_days == 120
    row = next(r for r in timelines[0].rows if r.snapshot == retiring.old)
    assert row.milestones[0].short == "T-120"
    client.force_login(retiring.admin)
    html = client.get("/o/acme/timeline/").content.decode()
    assert "120 days before retirement (your contract terms)" in html
    assert instant(retiring.old.retires_at - dt.timedelta(days=120)) in html


def test_only_this_organisations_pins_are_highlighted(retiring, client):
    client.force_login(retiring.outsider)
    html = client.get("/o/globex/timeline/").content.decode()
    assert "★ chat-2025-06-01" in html and "★ chat-2025-01-01" not in html


def test_svg_geometry_stays_inside_the_plot_and_today_sits_between_release_and_retirement(retiring):
    now = timezone.now()
    timelines, _, scale = build_timelines(org=retiring.org, now=now)
    for tl in timelines:
        for row in tl.rows:
            for seg in row.segments:
                assert seg.x >= 190 and seg.x + seg.width <= 985.1
        row = next(r for r in tl.rows if r.snapshot == retiring.old)
        assert row.bar_start_x < tl.today_x < row.milestones[0].x < scale.x(retiring.old.retires_at)


def test_timeline_of_a_foreign_organisation_is_404(world, client):
    client.force_login(world.outsider)
    assert client.get("/o/acme/timeline/").status_code == 404


def test_every_number_in_the_svg_is_finite(retiring, client):
    client.force_login(retiring.admin)
    html = client.get("/o/acme/timeline/").content.decode()
    svg = html[html.index('<svg class="timeline-svg"') :]
    assert not re.search(r'="(nan|inf|-inf|None)"', svg)


def test_milestone_labels_shown_never_overlap(retiring):
    timelines, _, _ = build_timelines(org=retiring.org, now=timezone.now())
    for tl in timelines:
        for row in (r for r in tl.rows if r.milestones):
            shown = sorted(m.label_extent() for m in row.milestones if m.show_label)
            assert row.milestones[0].show_label  # the contractual notice is always labelled
            assert all(a[1] <= b[0] for a, b in itertools.pairwise(shown))

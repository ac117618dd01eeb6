"""Catalog pages seen through one organisation: a snapshot, the timeline, the changelog and its feed."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.http import require_GET

from contracts.catalog import selectors as catalog_selectors
from contracts.consent.selectors import organization_terms_notice_days
from contracts.models import ChangelogKind, ModelFamily, Snapshot
from contracts.pins import selectors as pins_selectors
from notifications import selectors as notification_selectors
from portal.access import org_view
from portal.views.billing import offer_for

CHANGELOG_PAGE_SIZE = 15


# --------------------------------------------------------------------------------------------
# Snapshot page
# --------------------------------------------------------------------------------------------


def _config_rows(config: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in sorted(config.items()):
        shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        rows.append((key, shown))
    return rows


@require_GET
@org_view()
def snapshot_detail(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    snapshot = catalog_selectors.snapshot_get(name=snapshot_id)
    now = timezone.now()
    pins = pins_selectors.pins_using_snapshot(org=request.org, snapshot=snapshot)
    pin_changes = [
        change
        for change in pins_selectors.pin_history(org=request.org)
        if snapshot.pk in (change.from_snapshot_id, change.to_snapshot_id)
    ]
    retirement = pins_selectors.effective_retirement(org=request.org, snapshot=snapshot, at=now)
    lifecycle = [
        ("Released", snapshot.released_at),
        ("Deprecated", snapshot.deprecated_at),
        ("Retires", snapshot.retires_at),
        *([("Your extended support ends", retirement.extended_until)] if retirement.extended else []),
        ("Kept for bug reproduction until", snapshot.retention_until),
    ]
    context = {
        "snapshot": snapshot,
        "status": snapshot.status_at(now),
        "lifecycle": [(label, when, when is not None and when <= now) for label, when in lifecycle],
        "retirement": retirement,
        "days_until_retirement": (retirement.effective - now).days if retirement.effective else None,
        "offer": offer_for(request.org, snapshot),
        "config_rows": _config_rows(snapshot.config or {}),
        "changelog": list(catalog_selectors.changelog_list(org=request.org).filter(snapshot=snapshot)),
        "pins": pins,
        "pin_changes": pin_changes,
        "moves": catalog_selectors.alias_moves_involving(snapshot=snapshot),
    }
    return render(request, "portal/snapshot.html", context)


@require_GET
def snapshot_deprecation(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    """The public page a `rel="deprecation"` link points at: the snapshot's lifecycle, why and
    what replaces it. Outside the organisation area and free of customer data (no pins, no
    organisation, no extended-support grants)."""
    snapshot = catalog_selectors.snapshot_get(name=snapshot_id)
    now = timezone.now()
    successor = catalog_selectors.successor_newest_active(snapshot=snapshot, at=now)
    context = {
        "snapshot": snapshot,
        "status": snapshot.status_at(now),
        "successor": successor,
        "changelog": catalog_selectors.snapshot_changelog(snapshot=snapshot),
        "successor_changelog": catalog_selectors.snapshot_changelog(snapshot=successor),
    }
    return render(request, "portal/deprecation.html", context)


# --------------------------------------------------------------------------------------------
# Timeline: one SVG per family, geometry computed here, drawn by portal/_timeline_svg.html
# --------------------------------------------------------------------------------------------

SVG_WIDTH = 1000
LABEL_WIDTH = 190
PLOT_RIGHT = 985
ROW_HEIGHT = 52
TOP = 40
BAR_HEIGHT = 16
LABEL_CHAR_WIDTH = 6.2  # 10px bold text in viewBox units, to keep milestone labels from overlapping


@dataclass
class Segment:
    kind: str  # preview, active, deprecated, retention
    label: str
    x: float
    width: float
    open_ended: bool = False


@dataclass
class Milestone:
    label: str
    short: str
    when: dt.datetime
    x: float
    anchor: str = "middle"
    show_label: bool = True

    @property
    def label_x(self) -> float:
        return {"end": self.x - 4, "start": self.x + 4}.get(self.anchor, self.x)

    def label_extent(self) -> tuple[float, float]:
        width = len(self.short) * LABEL_CHAR_WIDTH
        if self.anchor == "end":
            return self.label_x - width, self.label_x
        if self.anchor == "start":
            return self.label_x, self.label_x + width
        return self.label_x - width / 2, self.label_x + width / 2


@dataclass
class TimelineRow:
    snapshot: Snapshot
    status: str
    y: float
    segments: list[Segment]
    pinned_by: list[str]
    milestones: list[Milestone] = field(default_factory=list)
    # The organisation's extended support past retirement: its own band under the bar.
    extended: Segment | None = None
    retirement: pins_selectors.Retirement | None = None

    @property
    def bar_y(self) -> float:
        return self.y + 16

    @property
    def bar_mid_y(self) -> float:
        return self.bar_y + BAR_HEIGHT / 2

    @property
    def label_y(self) -> float:
        return self.y + 28

    @property
    def status_y(self) -> float:
        return self.y + 42

    @property
    def marker_label_y(self) -> float:
        return self.y + 11

    @property
    def pin_label_y(self) -> float:
        return self.y + 47

    @property
    def bar_width(self) -> float:
        return round(self.bar_end_x - self.bar_start_x, 1)

    @property
    def bar_start_x(self) -> float:
        return min(segment.x for segment in self.segments) if self.segments else LABEL_WIDTH

    @property
    def bar_end_x(self) -> float:
        return max(segment.x + segment.width for segment in self.segments) if self.segments else LABEL_WIDTH


@dataclass
class Tick:
    x: float
    label: str
    major: bool


@dataclass
class FamilyTimeline:
    family: ModelFamily
    rows: list[TimelineRow]
    height: float
    today_x: float
    ticks: list[Tick]

    @property
    def axis_y(self) -> float:
        return self.height - 24

    @property
    def axis_label_y(self) -> float:
        return self.height - 6

    @property
    def bar_height(self) -> int:
        return BAR_HEIGHT


class Scale:
    def __init__(self, start: dt.datetime, end: dt.datetime):
        self.start, self.end = start, end
        self.span = (end - start).total_seconds()

    def x(self, when: dt.datetime) -> float:
        when = min(max(when, self.start), self.end)
        return round(
            LABEL_WIDTH + (when - self.start).total_seconds() / self.span * (PLOT_RIGHT - LABEL_WIDTH), 1
        )

    def ticks(self) -> list[Tick]:
        ticks = []
        year, month = self.start.year, self.start.month
        while True:
            month += 1
            if month > 12:
                year, month = year + 1, 1
            when = self.start.replace(
                year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0
            )
            if when > self.end:
                return ticks
            if month in (1, 4, 7, 10):
                label = str(year) if month == 1 else f"{when:%b}"
                ticks.append(Tick(x=self.x(when), label=label, major=month == 1))


def _segments(snapshot: Snapshot, scale: Scale) -> list[Segment]:
    published = snapshot.published_at
    points = [
        (
            "preview",
            "Preview",
            published if published and published < snapshot.released_at else None,
            snapshot.released_at,
        ),
        ("active", "Active", snapshot.released_at, snapshot.deprecated_at),
        ("deprecated", "Deprecated", snapshot.deprecated_at, snapshot.retires_at),
        ("retention", "Retired (kept for bug reproduction)", snapshot.retires_at, snapshot.retention_until),
    ]
    segments = []
    for kind, label, start, end in points:
        if start is None:
            continue
        x0, x1 = scale.x(start), scale.x(end or scale.end)
        if x1 > x0:
            segments.append(
                Segment(kind=kind, label=label, x=x0, width=round(x1 - x0, 1), open_ended=end is None)
            )
    return segments


def _milestones(
    snapshot: Snapshot, notice_days: int, scale: Scale, retires_at: dt.datetime | None = None
) -> list[Milestone]:
    """Notice markers before the (effective) retirement date."""
    retires_at = retires_at or snapshot.retires_at
    if retires_at is None:
        return []
    marks = [
        (
            f"Contractual notice ({notice_days} days before retirement)",
            f"T-{notice_days}",
            notice_days,
            "middle",
        ),
        ("30 days before retirement", "T-30", 30, "end"),
        ("7 days before retirement", "T-7", 7, "start"),
    ]
    milestones = []
    seen = set()
    for label, short, days, anchor in marks:
        if days in seen:
            continue
        seen.add(days)
        when = retires_at - dt.timedelta(days=days)
        milestones.append(Milestone(label=label, short=short, when=when, x=scale.x(when), anchor=anchor))
    # A label that would overlap an earlier one is left out: the marker's shape, its tooltip and
    # the text table still say which milestone it is.
    taken: list[tuple[float, float]] = []
    for milestone in milestones:
        left, right = milestone.label_extent()
        milestone.show_label = all(right + 2 <= a or left - 2 >= b for a, b in taken)
        if milestone.show_label:
            taken.append((left, right))
    return milestones


def build_timelines(*, org, now: dt.datetime) -> tuple[list[FamilyTimeline], int, Scale | None]:
    snapshots = list(catalog_selectors.snapshot_list())
    pins = list(pins_selectors.pin_list(org=org))
    notice_days = organization_terms_notice_days(org=org)
    pinned: dict[int, list[str]] = {}
    for pin in pins:
        pinned.setdefault(pin.snapshot_id, []).append(pin.alias.name)
    if not snapshots:
        return [], notice_days, None
    ends = pins_selectors.extended_support_ends(org=org, at=now)
    edges = [now + dt.timedelta(days=180), *(until for (_o, sid), until in ends.items())]
    for snapshot in snapshots:
        edges += [d for d in (snapshot.retention_until, snapshot.retires_at, snapshot.released_at) if d]
    start = min(min(s.released_at for s in snapshots), now - dt.timedelta(days=365)) - dt.timedelta(days=30)
    scale = Scale(start, max(edges) + dt.timedelta(days=30))
    by_family: dict[int, list[Snapshot]] = {}
    for snapshot in snapshots:
        by_family.setdefault(snapshot.family_id, []).append(snapshot)
    timelines = []
    ticks = scale.ticks()
    for family_snapshots in by_family.values():
        rows = []
        for index, snapshot in enumerate(family_snapshots):
            pinned_by = sorted(pinned.get(snapshot.pk, []))
            retirement = pins_selectors.effective_retirement(org=org, snapshot=snapshot, ends=ends)
            extended = None
            if retirement.extended:
                x0, x1 = scale.x(retirement.retires_at), scale.x(retirement.extended_until)
                extended = Segment(
                    kind="extended",
                    label=f"Your extended support, until {retirement.extended_until:%Y-%m-%d %H:%M} UTC",
                    x=x0,
                    width=round(x1 - x0, 1),
                    open_ended=False,
                )
            rows.append(
                TimelineRow(
                    snapshot=snapshot,
                    status=snapshot.status_at(now),
                    y=TOP + index * ROW_HEIGHT,
                    segments=_segments(snapshot, scale),
                    pinned_by=pinned_by,
                    milestones=_milestones(snapshot, notice_days, scale, retirement.effective)
                    if pinned_by
                    else [],
                    extended=extended,
                    retirement=retirement,
                )
            )
        timelines.append(
            FamilyTimeline(
                family=family_snapshots[0].family,
                rows=rows,
                height=TOP + len(rows) * ROW_HEIGHT + 30,
                today_x=scale.x(now),
                ticks=ticks,
            )
        )
    return timelines, notice_days, scale


@require_GET
@org_view()
def timeline(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    timelines, notice_days, _scale = build_timelines(org=request.org, now=now)
    context = {
        "timelines": timelines,
        "notice_days": notice_days,
        "has_terms": request.org.accepted_terms_id is not None,
        "now": now,
        "svg_width": SVG_WIDTH,
        "label_width": LABEL_WIDTH,
        "plot_right": PLOT_RIGHT,
    }
    return render(request, "portal/timeline.html", context)


# --------------------------------------------------------------------------------------------
# Changelog and its Atom feed
# --------------------------------------------------------------------------------------------


def _changelog_filters(request: HttpRequest) -> dict:
    kind = request.GET.get("kind", "")
    return {
        "family": request.GET.get("family", "")[:64],
        "kind": kind if kind in ChangelogKind.values else "",
        "affecting_pins": request.GET.get("mine") == "1",
    }


@require_GET
@org_view()
def changelog(request: HttpRequest) -> HttpResponse:
    filters = _changelog_filters(request)
    paginator = Paginator(catalog_selectors.changelog_list(org=request.org, **filters), CHANGELOG_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "families": ModelFamily.objects.order_by("name").values_list("slug", "name"),
        "kinds": ChangelogKind.choices,
        "announcements": catalog_selectors.lifecycle_announcements(
            org=request.org, family=filters["family"] or None, limit=20
        ),
        "feed_token": notification_selectors.feed_token_active(org=request.org, user=request.user),
    }
    template = "portal/changelog.html"
    if request.htmx and not request.htmx.history_restore_request:
        template += "#more" if request.htmx.target == "load-more" else "#entries"
    return render(request, template, context)


@require_GET
def changelog_feed(request: HttpRequest, org: str) -> HttpResponse:
    """The Atom feed: with a member's personal feed token (`?token=`) a feed reader subscribes
    without a session; without one, the signed-in member's session."""
    token = request.GET.get("token")
    if token is None:
        return _changelog_feed_session(request, org=org)
    organization, _user = notification_selectors.feed_token_member(token=token[:100])
    if organization.slug != org:
        raise Http404("Unknown or revoked feed token.")
    request.org = organization
    return _changelog_feed(request)


@org_view()
def _changelog_feed_session(request: HttpRequest) -> HttpResponse:
    return _changelog_feed(request)


def _changelog_feed(request: HttpRequest) -> HttpResponse:
    filters = _changelog_filters(request)
    page_url = request.build_absolute_uri(reverse("portal:changelog", kwargs={"org": request.org.slug}))
    feed = Atom1Feed(
        title=f"Model changelog for {request.org.name}",
        link=page_url,
        description="Changes to the model snapshots served by the vendor, with deprecations, retirements "
        "and your extended support.",
        feed_url=request.build_absolute_uri(request.path),
        language="en",
    )
    items = []
    for entry in catalog_selectors.changelog_list(org=request.org, **filters)[:100]:
        snapshot_url = request.build_absolute_uri(
            reverse("portal:snapshot", kwargs={"org": request.org.slug, "snapshot_id": entry.snapshot.name})
        )
        items.append(
            {
                "title": f"[{entry.get_kind_display()}] {entry.snapshot.name}: {entry.title}",
                "link": f"{snapshot_url}#entry-{entry.pk}",
                "description": entry.body,
                "pubdate": entry.published_at,
                "updateddate": entry.published_at,
                "unique_id": f"{page_url}#entry-{entry.pk}",
                "categories": [entry.kind, entry.snapshot.family.slug],
            }
        )
    if not filters["kind"]:
        for event in catalog_selectors.lifecycle_announcements(
            org=request.org, family=filters["family"] or None
        ):
            items.append(
                {
                    "title": event.title,
                    "link": request.build_absolute_uri(
                        reverse("portal:snapshot_deprecation", kwargs={"snapshot_id": event.snapshot.name})
                    ),
                    "description": event.body,
                    "pubdate": event.at,
                    "updateddate": event.at,
                    "unique_id": f"{page_url}#{event.kind}-{event.snapshot.name}-{int(event.at.timestamp())}",
                    "categories": [event.kind, event.snapshot.family.slug],
                }
            )
    for item in sorted(items, key=lambda i: i["pubdate"], reverse=True):
        feed.add_item(**item)
    response = HttpResponse(content_type="application/atom+xml; charset=utf-8")
    feed.write(response, "utf-8")
    return response

"""The per-organisation iCalendar feed (RFC 5545, built with the `icalendar` library): retirements and
contractual notice dates of pinned snapshots, migration deadlines, ends of extended-support grants."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event

from contracts.models import ExtendedSupport, Migration, Organization, Pin
from contracts.pins.selectors import effective_retirement, extended_support_ends
from notifications import milestones


def _event(*, uid: str, summary: str, at: dt.datetime, description: str, url: str) -> Event:
    event = Event()
    event.add("uid", f"{uid}@{settings.SITE_URL.split('//', 1)[-1].split('/', 1)[0]}")
    event.add("summary", summary)
    event.add("dtstart", at.date())
    event.add("dtend", at.date() + dt.timedelta(days=1))
    event.add("dtstamp", timezone.now())
    event.add("description", description)
    event.add("url", url)
    event.add("transp", "TRANSPARENT")
    return event


def calendar_feed(*, org: Organization) -> bytes:
    cal = Calendar()
    cal.add("prodid", "-//Version Contract Portal//contract dates//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"{org.name}: model contract dates")
    base = f"{settings.SITE_URL}/o/{org.slug}"
    terms = org.accepted_terms
    notice_days = terms.min_notice_days if terms else None
    seen: set[int] = set()
    ends = extended_support_ends(org=org)
    for pin in Pin.objects.filter(organization=org).select_related("snapshot__replacement", "alias"):
        snapshot = pin.snapshot
        if snapshot.pk in seen:
            continue
        seen.add(snapshot.pk)
        # The date this organisation stops being served: its extended support moves it later.
        retirement = effective_retirement(org=org, snapshot=snapshot, ends=ends)
        replacement = f" Replacement: {snapshot.replacement.name}." if snapshot.replacement else ""
        if retirement.extended:
            # The catalog date, for information; the grant's end below is when service stops.
            cal.add_component(
                _event(
                    uid=f"{milestones.RETIREMENT_DAY}-{org.pk}-{snapshot.pk}",
                    summary=f"{snapshot.name} retires",
                    at=retirement.retires_at,
                    description=f"{snapshot.name} retires for everyone; your extended support keeps it "
                    f"serving you until {retirement.extended_until:%Y-%m-%d}.{replacement}",
                    url=f"{base}/snapshots/{snapshot.name}/",
                )
            )
        for m in milestones.calendar_dates(
            deprecated_at=snapshot.deprecated_at, retires_at=retirement.effective, min_notice_days=notice_days
        ):
            if m.milestone == milestones.RETIREMENT_DAY and retirement.extended:
                continue  # the grant's "Extended support ends" event is the end of service
            if m.milestone == milestones.RETIREMENT_DAY:
                summary = f"{snapshot.name} retires"
                description = f"{snapshot.name} (pinned for {pin.alias.name}) stops serving.{replacement}"
            else:
                summary = f"Notice date: {snapshot.name}"
                description = f"Contractual notice date ({notice_days or milestones.DEFAULT_NOTICE_DAYS} days before retirement)."
            cal.add_component(
                _event(
                    uid=f"{m.milestone}-{org.pk}-{snapshot.pk}",
                    summary=summary,
                    at=m.at,
                    description=description,
                    url=f"{base}/snapshots/{snapshot.name}/",
                )
            )
    for migration in Migration.objects.filter(
        organization=org, state__in=["proposed", "deferred", "consented"], deadline__isnull=False
    ).select_related("from_snapshot", "to_snapshot"):
        cal.add_component(
            _event(
                uid=f"migration-deadline-{migration.pk}",
                summary=f"Migration deadline: {migration.from_snapshot.name} → {migration.to_snapshot.name}",
                at=migration.deferred_until or migration.deadline,
                description="Consent, defer or decline before this date.",
                url=f"{base}/migrations/",
            )
        )
    for grant in ExtendedSupport.objects.filter(organization=org, cancelled_at__isnull=True).select_related(
        "snapshot"
    ):
        cal.add_component(
            _event(
                uid=f"extended-support-end-{grant.pk}",
                summary=f"Extended support ends: {grant.snapshot.name}",
                at=grant.until,
                description=f"Paid extended support for {grant.snapshot.name} ends.",
                url=f"{base}/billing/",
            )
        )
    return cal.to_ical()

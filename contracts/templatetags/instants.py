"""The one way a template shows an instant: `{{ value|instant }}` gives "2 Dec 2026, 09:30 CET", in
the time zone active for the request (the reader's choice, see portal.middleware.TimeZoneMiddleware;
UTC in e-mails, PDFs and tasks), to the minute, with the zone named. A date alone gives "2 Dec 2026".
Registered as a template builtin, so every template has it without a {% load %}."""

from __future__ import annotations

from datetime import UTC, date, datetime

from django import template
from django.utils import timezone

register = template.Library()


def zone_label(moment: datetime) -> str:
    """The zone's abbreviation (UTC, CET, EDT); zones without one (+04) are written UTC+04."""
    name = moment.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


@register.filter(expects_localtime=False)
def instant(value: datetime | date | str | None) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):  # an instant kept as ISO 8601 text (signed JSON payloads)
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            value = value.replace(tzinfo=UTC)
        local = timezone.localtime(value)
        return f"{local.day} {local:%b %Y}, {local:%H:%M} {zone_label(local)}"
    if isinstance(value, date):
        return f"{value.day} {value:%b %Y}"
    return str(value)


@register.simple_tag
def current_time_zone_label() -> str:
    """The name of the zone pages are shown in now, e.g. "Europe/Paris (CET)" or "UTC"."""
    zone = timezone.get_current_timezone_name()
    label = zone_label(timezone.localtime(timezone.now()))
    return zone if zone == label else f"{zone} ({label})"

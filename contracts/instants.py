"""The one parser for instants that people and programs type (query strings, form fields, JSON)."""

from __future__ import annotations

import datetime as dt

from django.utils.dateparse import parse_datetime

from contracts.errors import ApplicationError


def parse_instant(value: str, *, field: str) -> dt.datetime:
    """An ISO 8601 instant with a time zone (a date alone means midnight UTC)."""
    parsed = None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            parsed = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ApplicationError(
            f"{field} must be an ISO 8601 date-time such as 2025-09-29T12:00:00Z.",
            fields={field: "Expected ISO 8601, e.g. 2025-09-29T12:00:00Z."},
        )
    if parsed.tzinfo is None:
        raise ApplicationError(
            f"{field} must carry a time zone (Z or ±HH:MM).",
            fields={field: "Expected ISO 8601 with a time zone, e.g. 2025-09-29T12:00:00Z."},
        )
    return parsed

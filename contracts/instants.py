"""The one parser for instants that people and programs type: query strings, form fields, JSON.

The rule, the same everywhere: an instant is ISO 8601, and its time zone is never guessed.
- A date and time carries its zone (`Z` or `±HH:MM`), or the input names the zone beside it (`zone`:
  the time-zone field of a form, or the time zone a page says it shows). Where nothing names a zone
  (the API), a time without one is refused, naming the field.
- A date alone (`2025-09-29`) is that day in the given zone (UTC when none is given): its first instant,
  or its last with `end_of_day` (the end of a range).
- With `bounded`, the year lies between 2000 and 2999 (ranges a person could mean; far from overflow).
Every refusal is an ApplicationError naming the field, so the API answers 400 in the envelope and a
page shows it beside the field.
"""

from __future__ import annotations

import datetime as dt
import re

from contracts.errors import ApplicationError

DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EXAMPLE = "2025-09-29T12:00:00Z"


def parse_instant(
    value: str,
    *,
    field: str,
    zone: dt.tzinfo | None = None,
    end_of_day: bool = False,
    bounded: bool = False,
) -> dt.datetime:
    value = (value or "").strip()
    try:
        if DATE_ONLY.match(value):
            day = dt.date.fromisoformat(value)
            parsed = dt.datetime.combine(
                day, dt.time.max if end_of_day else dt.time.min, tzinfo=zone or dt.UTC
            )
        else:
            parsed = dt.datetime.fromisoformat(value.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ApplicationError(
            f"{field} must be an ISO 8601 date-time such as {EXAMPLE}.",
            fields={field: f"Expected ISO 8601, e.g. {EXAMPLE}."},
        ) from None
    if parsed.tzinfo is None:
        if zone is None:
            raise ApplicationError(
                f"{field} must carry a time zone (Z or ±HH:MM).",
                fields={field: f"Expected ISO 8601 with a time zone, e.g. {EXAMPLE}."},
            )
        parsed = parsed.replace(tzinfo=zone)
    if bounded and not 2000 <= parsed.year <= 2999:
        raise ApplicationError(
            f"{field} is out of range.", fields={field: "Between the years 2000 and 2999."}
        )
    return parsed


def instant_words(value: dt.datetime | None, *, with_time: bool = True) -> str:
    """An instant as people read it in a refusal or a notice: "3 March 2026, 14:00 UTC".

    No microseconds and no ISO punctuation; the zone is always named."""
    if value is None:
        return "no date"
    value = value.astimezone(dt.UTC)
    day = f"{value.day} {value:%B %Y}"
    return f"{day}, {value:%H:%M} UTC" if with_time else day

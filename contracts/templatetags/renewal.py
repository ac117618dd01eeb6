"""Template filters of the audit pack PDF."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def instant(value: str | None) -> str:
    """An ISO 8601 instant of the pack's JSON as a reader wants it: "2026-10-03 09:17 UTC"."""
    if not value:
        return "—"
    text = str(value)
    return f"{text[:10]} {text[11:16]} UTC" if len(text) >= 16 and text[10] == "T" else text

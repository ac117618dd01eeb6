"""The audit log as CSV, streamed row by row (the page's export and `GET audit-log/?format=csv`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from django.db.models import QuerySet

from contracts.models import AuditEntry

COLUMNS = (
    "id",
    "created_at",
    "action",
    "actor_kind",
    "actor",
    "target_type",
    "target_id",
    "target",
    "before",
    "after",
    "ip",
    "user_agent",
)


class _Line:
    def write(self, value: str) -> str:
        return value


def _cell(value: str) -> str:
    """Neutralise spreadsheet formulas in free text (CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def audit_csv_rows(entries: QuerySet[AuditEntry]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(COLUMNS)
    for entry in entries.iterator(chunk_size=2000):
        yield writer.writerow(
            (
                entry.pk,
                entry.created_at.isoformat(),
                entry.action,
                entry.actor_kind,
                _cell(entry.actor_label),
                entry.target_type,
                _cell(entry.target_id),
                _cell(entry.target_label),
                _cell(json.dumps(entry.before, sort_keys=True)) if entry.before else "",
                _cell(json.dumps(entry.after, sort_keys=True)) if entry.after else "",
                entry.ip or "",
                _cell(entry.user_agent),
            )
        )

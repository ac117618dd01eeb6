"""Ledger records in words, for people reading the consent history: what was done and its details
(the deferral's end, a consent's scheduled date, a grant's end…), dates in words."""

from __future__ import annotations

from contracts.instants import instant_words, parse_instant
from contracts.models import ConsentRecord, LedgerAction


def _when(value: str | None) -> str:
    if not value:
        return ""
    try:
        return instant_words(parse_instant(value, field="details"))
    except Exception:
        return str(value)


def record_words(record: ConsentRecord) -> str:
    """One sentence on a record's details (the action's name is its label)."""
    return details_words(record.action, record.details)


def details_words(action: str, details: object) -> str:
    """`record_words` from the action and details alone (the PDF export reads rows, not records)."""
    d = details if isinstance(details, dict) else {}
    if action == LedgerAction.CONSENT:
        if d.get("scheduled_for"):
            return f"Scheduled for {_when(d['scheduled_for'])}."
        return "Applied at once." if d.get("applied_at") else ""
    # A sentence whose date is missing (details written by hand, a benchmark's rows) is left out.
    if action == LedgerAction.DEFER and d.get("deferred_until"):
        limit = f" (latest allowed {_when(d['limit'])})" if d.get("limit") else ""
        return f"Deferred until {_when(d['deferred_until'])}{limit}."
    if action == LedgerAction.APPLY and d.get("scheduled_for"):
        return f"The consent scheduled for {_when(d['scheduled_for'])} was applied."
    if action == LedgerAction.ROLLBACK and d.get("window_end"):
        return f"Rolled back within the window (it closed {_when(d['window_end'])})."
    if action == LedgerAction.FORCED and d.get("deadline"):
        return f"Undecided at the deadline, {_when(d['deadline'])}."
    if action == LedgerAction.ACCEPT_TERMS:
        previous = d.get("previous_terms_version")
        return f"Replacing terms {previous}." if previous else "First terms accepted."
    if action == LedgerAction.EXTENDED_SUPPORT:
        return f"Served until {_when(d.get('until'))}{' (simulated purchase)' if d.get('simulated') else ''}."
    if action == LedgerAction.EXTENDED_SUPPORT_END:
        return f"Ends {_when(d.get('until'))}."
    if action in (LedgerAction.FOLLOW, LedgerAction.STAFF_MOVE):
        return f"Alias {d.get('alias', '')}: {d.get('reason', '')}".strip()
    if action == LedgerAction.BASELINE:
        return f"Suite {d.get('suite', '')}, result on {d.get('snapshot', '')}."
    return ""

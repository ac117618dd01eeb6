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
    d = record.details or {}
    action = record.action
    if action == LedgerAction.CONSENT:
        if d.get("scheduled_for"):
            return f"Scheduled for {_when(d['scheduled_for'])}."
        return "Applied at once." if d.get("applied_at") else ""
    if action == LedgerAction.DEFER:
        return f"Deferred until {_when(d.get('deferred_until'))} (latest allowed {_when(d.get('limit'))})."
    if action == LedgerAction.APPLY:
        return f"The consent scheduled for {_when(d.get('scheduled_for'))} was applied."
    if action == LedgerAction.ROLLBACK:
        return f"Rolled back within the window (it closed {_when(d.get('window_end'))})."
    if action == LedgerAction.FORCED:
        return f"Undecided at the deadline, {_when(d.get('deadline'))}."
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

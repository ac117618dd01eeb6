"""Template helpers of the diff pages, and the baseline-delta fragment other pages include:

{% load diffs %}{% baseline_delta current_org %}                       (served snapshots)
{% baseline_delta current_org migration.to_snapshot compare_from=migration.from_snapshot %}
"""

from __future__ import annotations

from typing import Any

from django import template

from contracts.diffs import render
from contracts.evals.selectors import baseline_deltas
from contracts.models import Organization, Snapshot

register = template.Library()


@register.filter
def num(value: Any) -> str:
    return render.fmt_number(value)


@register.filter
def signed(value: Any) -> str:
    return render.fmt_signed(value)


@register.filter
def cfgvalue(value: Any) -> str:
    return render.fmt_value(value)


@register.inclusion_tag("contracts/diffs/_baseline_delta.html")
def baseline_delta(
    org: Organization | None, snapshot: Snapshot | None = None, compare_from: Snapshot | None = None
) -> dict[str, Any]:
    """Each procurement baseline of `org` against `snapshot` (default: the snapshots it is served)."""
    if org is None:
        return {"org": None, "deltas": [], "warnings": []}
    deltas = baseline_deltas(org=org, snapshots=[snapshot] if snapshot is not None else None)
    return {
        "org": org,
        "deltas": deltas,
        "warnings": [d for d in deltas if not d.meets_baseline],
        "snapshot": snapshot,
        "compare_from": compare_from,
    }

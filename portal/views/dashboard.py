"""The dashboard: every pin of the organisation, filtered in place (htmx) or by plain GET links."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from contracts.gateway.selectors import usage_last_seen
from contracts.models import Membership, Pin, SnapshotStatus, UpgradePolicy
from contracts.pins import selectors
from contracts.tenancy.roles import Permission
from portal.access import may, org_view
from portal.paging import key_page

STATUS_CHOICES = [(value, label) for value, label in SnapshotStatus.choices if value != SnapshotStatus.DRAFT]
SOON_DAYS = 90
PAGE_SIZE = 25


@require_GET
@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send a signed-in user to their organisation; a user of several chooses one."""
    memberships = list(Membership.objects.filter(user=request.user).select_related("organization")[:2])
    if not memberships:
        return render(request, "portal/no_org.html", status=200)
    if len(memberships) > 1:
        return redirect("portal:org_switch")
    return redirect("portal:dashboard", org=memberships[0].organization.slug)


@dataclass(frozen=True)
class DashboardFilters:
    status: str = ""
    family: str = ""
    policy: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query) -> DashboardFilters:
        status = query.get("status", "")
        policy = query.get("policy", "")
        return cls(
            status=status if status in SnapshotStatus.values else "",
            family=query.get("family", "")[:64],
            policy=policy if policy in UpgradePolicy.values else "",
            q=query.get("q", "").strip()[:100],
        )

    @property
    def active(self) -> bool:
        return bool(self.status or self.family or self.policy or self.q)


def annotate_pin(pin: Pin, now: dt.datetime, ends: dict | None = None) -> Pin:
    """Attach what the row shows: the status now and whole days until the effective retirement
    (the organisation's extended support included)."""
    pin.status_now = pin.snapshot.status_at(now)
    if ends is None:
        ends = selectors.extended_support_ends(org=pin.organization_id, at=now)
    pin.retirement = selectors.effective_retirement(org=pin.organization_id, snapshot=pin.snapshot, ends=ends)
    retires_at = pin.retirement.effective
    pin.days_until_retirement = None if retires_at is None else (retires_at - now).days
    pin.days_since_retirement = None if retires_at is None else max((now - retires_at).days, 0)
    pin.retiring_soon = retires_at is not None and now <= retires_at <= now + dt.timedelta(days=SOON_DAYS)
    return pin


@require_GET
@org_view()
def dashboard(request: HttpRequest) -> HttpResponse:
    """One page of the organisation's pins, filtered and paginated in SQL: the server's time and
    its number of queries stay the same for 5 pins or 5,000. The counts at the top are exact."""
    now = timezone.now()
    filters = DashboardFilters.from_query(request.GET)
    ends = selectors.extended_support_ends(org=request.org, at=now)
    shown = selectors.pin_list(
        org=request.org,
        status=filters.status or None,
        family=filters.family or None,
        policy=filters.policy or None,
        q=filters.q or None,
        at=now,
    )
    page = key_page(shown, PAGE_SIZE, request.GET.get("page"))
    summary = selectors.pin_summary(org=request.org, at=now, soon=dt.timedelta(days=SOON_DAYS))
    # Pins on extended support: only snapshots with a grant can be (one query over those few). The
    # SQL counts use the snapshot's own retirement: a grant that carries a pin past the "soon"
    # window takes it out of the retiring-soon count.
    granted = {snapshot_id for org_id, snapshot_id in ends if org_id == request.org.pk}
    summary["extended"] = 0
    soon_end = now + dt.timedelta(days=SOON_DAYS)
    if granted:
        for pin in selectors.pin_list(org=request.org, at=now).filter(snapshot_id__in=granted):
            retirement = selectors.effective_retirement(org=request.org.pk, snapshot=pin.snapshot, ends=ends)
            if not retirement.extended:
                continue
            summary["extended"] += 1
            raw_soon = now <= retirement.retires_at <= soon_end
            if raw_soon and not (now <= retirement.effective <= soon_end):
                summary["retiring_soon"] -= 1
    pins = [annotate_pin(pin, now, ends) for pin in page.object_list]
    last_seen = usage_last_seen(org=request.org)  # one aggregate query, whatever the page
    for pin in pins:
        pin.last_used = last_seen.get((pin.alias_id, pin.snapshot_id))
    context = {
        "pins": pins,
        "page": page,
        "total": summary["pins"],
        "filters": filters,
        "families": selectors.pin_families(org=request.org),
        "status_choices": STATUS_CHOICES,
        "policy_choices": UpgradePolicy.choices,
        "summary": summary,
        "soon_days": SOON_DAYS,
        "now": now,
        # Built once: a row of {% url %} and {% include %} per pin costs more than the queries.
        "snapshot_base": f"/o/{request.org.slug}/snapshots/",
        "settings_url": reverse("portal:settings", kwargs={"org": request.org.slug}),
        "migrations_url": f"/o/{request.org.slug}/migrations/",
        "usage_url": f"/o/{request.org.slug}/usage/",
        "is_admin": may(request, Permission.MANAGE_SETTINGS),
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "portal/dashboard.html#pins" if partial else "portal/dashboard.html"
    return render(request, template, context)

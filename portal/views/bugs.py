"""Bug report pages: the customer's list, filing form and report page, and the staff triage queue."""

from __future__ import annotations

import datetime as dt
import functools
import json
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from contracts.bugs import selectors, services
from contracts.errors import ApplicationError
from contracts.instants import parse_instant
from contracts.models import BugStatus, ModelFamily, Snapshot, SnapshotStatus
from contracts.tenancy.roles import Permission
from contracts.text import CONTROL_CHARACTERS_MESSAGE, has_control_characters
from portal.access import may, org_view

COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Singapore",
    "Asia/Kolkata",
    "Australia/Sydney",
)
FORM_FIELDS = ("alias", "observed_at", "tz", "response_id", "receipt", "prompt", "output", "expected")


def _zones() -> tuple[str, ...]:
    """The common zones, with the reader's own first when it is not among them."""
    own = timezone.get_current_timezone_name()
    return COMMON_ZONES if own in COMMON_ZONES else (own, *COMMON_ZONES)


@dataclass(frozen=True)
class BugFilters:
    """The list's filters from the query string; a value that is not one is ignored, as on the dashboard."""

    status: str = ""
    q: str = ""

    @classmethod
    def from_query(cls, query) -> BugFilters:
        status = query.get("status", "")
        q = query.get("q", "").strip()[:100]
        if has_control_characters(q):  # PostgreSQL text cannot even be compared with a NUL
            raise ApplicationError(
                f"The search {CONTROL_CHARACTERS_MESSAGE}.", fields={"q": CONTROL_CHARACTERS_MESSAGE}
            )
        return cls(status=status if status in BugStatus.values else "", q=q)

    @property
    def active(self) -> bool:
        return bool(self.status or self.q)


def _list_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    filters = BugFilters.from_query(request.GET)
    reports = selectors.bug_report_list(org=request.org, status=filters.status or None, q=filters.q or None)
    return {
        "page": Paginator(reports, 25).get_page(request.GET.get("page")),
        "filters": filters,
        "status_choices": BugStatus.choices,
        # A bounded list to pick from (the catalogue may hold thousands); any alias may be typed.
        "aliases": selectors.bug_alias_suggestions(org=request.org),
        "zones": _zones(),
        "can_file": may(request, Permission.FILE_BUG_REPORTS),
        "form": {"tz": timezone.get_current_timezone_name()},
        **extra,
    }


@require_GET
@org_view()
def bug_list(request: HttpRequest) -> HttpResponse:
    return render(request, "contracts/bugs/list.html", _list_context(request))


def _observed_at(raw: str, zone_name: str) -> dt.datetime | None:
    """A datetime-local value read in the chosen time zone (an explicit offset in the value wins)."""
    if not raw.strip():
        return None
    try:
        zone = zoneinfo.ZoneInfo(zone_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ApplicationError(
            f"Unknown time zone {zone_name!r}.", fields={"tz": "Pick a time zone."}
        ) from exc
    return parse_instant(raw, field="observed_at", zone=zone)


def _receipt(raw: str) -> Any:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApplicationError(
            "The receipt is not JSON; paste it exactly as returned with the response.",
            fields={"receipt": "Not valid JSON."},
        ) from exc


@require_POST
@org_view(Permission.FILE_BUG_REPORTS)
def bug_file(request: HttpRequest) -> HttpResponse:
    form = {name: request.POST.get(name, "") for name in FORM_FIELDS}
    try:
        report = services.bug_report_file(
            org=request.org,
            reporter=request.user,
            alias=form["alias"],
            observed_at=_observed_at(form["observed_at"], form["tz"]),
            response_id=form["response_id"],
            receipt=_receipt(form["receipt"]),
            prompt=form["prompt"],
            output=form["output"],
            expected=form["expected"],
        )
    except ApplicationError as error:
        context = _list_context(request, form=form, error=error)
        return render(request, "contracts/bugs/list.html", context, status=error.status_code)
    messages.success(request, f"Bug report #{report.pk} filed and routed to {report.owning_team}.")
    return redirect("portal:bug_detail", org=request.org.slug, report_id=report.pk)


@require_GET
@org_view()
def bug_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    view = selectors.bug_report_view(org=request.org, report_id=report_id)
    return render(request, "contracts/bugs/detail.html", {"view": view, "report": view.report})


# --------------------------------------------------------------------------------------------
# Staff triage (vendor staff only; 404 to everyone else, so the pages cannot be probed)
# --------------------------------------------------------------------------------------------


def staff_view(view: Callable) -> Callable:
    @login_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapped


STAFF_STATUS_CHOICES = [(s.value, s.label) for s in SnapshotStatus if s != SnapshotStatus.DRAFT]


@require_GET
@staff_view
def staff_bug_queue(request: HttpRequest) -> HttpResponse:
    families = list(ModelFamily.objects.order_by("slug").values_list("slug", "name"))
    filters = {
        "family": request.GET.get("family", ""),
        "snapshot_status": request.GET.get("snapshot_status", ""),
        "age": request.GET.get("age", ""),
        "status": request.GET.get("status", ""),
    }
    bad = {}
    if filters["family"] and filters["family"] not in {slug for slug, _ in families}:
        bad["family"] = "Unknown family."
    if filters["snapshot_status"] and filters["snapshot_status"] not in SnapshotStatus.values:
        bad["snapshot_status"] = f"One of: {', '.join(SnapshotStatus.values)}."
    if filters["age"] and filters["age"] not in selectors.AGE_BUCKETS:
        bad["age"] = f"One of: {', '.join(selectors.AGE_BUCKETS)}."
    if filters["status"] and filters["status"] not in BugStatus.values:
        bad["status"] = f"One of: {', '.join(BugStatus.values)}."
    if bad:
        raise ApplicationError("Unknown filter value.", fields=bad)
    reports = list(selectors.bug_triage_list(**{k: v or None for k, v in filters.items()}))
    context = {
        "reports": reports,
        "filters": filters,
        "families": families,
        "snapshot_statuses": STAFF_STATUS_CHOICES,
        "ages": [(key, label) for key, (label, _lo, _hi) in selectors.AGE_BUCKETS.items()],
        "statuses": BugStatus.choices,
    }
    if request.htmx:
        return render(request, "contracts/bugs/_staff_rows.html", context)
    return render(request, "contracts/bugs/staff_queue.html", context)


def _staff_detail_context(report_id: int, **extra: Any) -> dict[str, Any]:
    report = selectors.bug_report_get_for_staff(report_id=report_id)
    view = selectors.bug_report_view_of(report=report)
    return {
        "view": view,
        "report": report,
        # "Artifact gone" is only offered when it is: a retained artifact can still be restored.
        "next_statuses": [
            (s, BugStatus(s).label)
            for s in services.TRANSITIONS[report.status]
            if s != BugStatus.CANNOT_REPRODUCE or view.reproducibility == selectors.GONE
        ],
        "fix_candidates": Snapshot.objects.filter(
            family=report.snapshot.family_id, published_at__isnull=False
        )
        .order_by("-released_at")
        .values_list("name", flat=True),
        **extra,
    }


@require_GET
@staff_view
def staff_bug_detail(request: HttpRequest, report_id: int) -> HttpResponse:
    return render(request, "contracts/bugs/staff_detail.html", _staff_detail_context(report_id))


@require_POST
@staff_view
def staff_bug_transition(request: HttpRequest, report_id: int) -> HttpResponse:
    report = selectors.bug_report_get_for_staff(report_id=report_id)
    status = request.POST.get("status", "")
    fixed_in_name = request.POST.get("fixed_in", "").strip()
    try:
        fixed_in = None
        if fixed_in_name:
            fixed_in = Snapshot.objects.filter(name=fixed_in_name).first()
            if fixed_in is None:
                raise ApplicationError(
                    f"No snapshot {fixed_in_name!r}.", fields={"fixed_in": "Unknown snapshot."}
                )
        note = "" if status == BugStatus.CANNOT_REPRODUCE else request.POST.get("note", "")
        report = services.bug_report_transition(
            report=report, status=status, acting_user=request.user, note=note, fixed_in=fixed_in
        )
    except ApplicationError as error:
        context = _staff_detail_context(report_id, error=error)
        return render(request, "contracts/bugs/staff_detail.html", context, status=error.status_code)
    messages.success(request, f"Bug report #{report.pk} is now {report.get_status_display().lower()}.")
    return redirect("portal:staff_bug_detail", report_id=report.pk)

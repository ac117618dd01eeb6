"""Reads of bug reports: an organisation's own reports (404 for anyone else's) and the staff queue."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from contracts.errors import NotFound
from contracts.models import (
    Alias,
    BugReport,
    BugReportEvent,
    ContractTerms,
    Organization,
    Pin,
    Snapshot,
    SnapshotStatus,
)

REPRODUCIBLE_NOW = "now"
REPRODUCIBLE_ON_REQUEST = "on-request"
GONE = "gone"
# How many alias names the filing form offers (the catalogue may hold thousands).
ALIAS_SUGGESTIONS = 100

REPRODUCIBILITY_LABELS = {
    REPRODUCIBLE_NOW: "Reproducible now",
    REPRODUCIBLE_ON_REQUEST: "Reproducible on request",
    GONE: "Gone",
}

REPRODUCIBILITY_EXPLANATIONS = {
    REPRODUCIBLE_NOW: "The artifact is still served: the vendor can re-run your prompt on it today.",
    REPRODUCIBLE_ON_REQUEST: (
        "The artifact is retired but still retained: the vendor can restore it to reproduce the output."
    ),
    GONE: "The artifact has been purged after its retention period: the output cannot be re-run.",
}

# Age buckets of the triage queue: name -> (label, min age, max age).
AGE_BUCKETS: dict[str, tuple[str, dt.timedelta | None, dt.timedelta | None]] = {
    "lt1d": ("Less than a day", None, dt.timedelta(days=1)),
    "1to7d": ("1 to 7 days", dt.timedelta(days=1), dt.timedelta(days=7)),
    "7to30d": ("7 to 30 days", dt.timedelta(days=7), dt.timedelta(days=30)),
    "gt30d": ("More than 30 days", dt.timedelta(days=30), None),
}


def reproducibility(snapshot: Snapshot, *, at: dt.datetime | None = None) -> str:
    """Whether the artifact that produced an output can still be run: now, on request, or gone."""
    status = snapshot.status_at(at)
    if status == SnapshotStatus.PURGED:
        return GONE
    if status == SnapshotStatus.RETIRED:
        return REPRODUCIBLE_ON_REQUEST
    return REPRODUCIBLE_NOW


def bug_policy_terms(*, org: Organization) -> ContractTerms | None:
    """The terms whose retired-artifact policy answers this organisation: the version it accepted."""
    if org.accepted_terms_id is None:
        return None
    return ContractTerms.objects.filter(pk=org.accepted_terms_id).first()


def _reports() -> QuerySet[BugReport]:
    return BugReport.objects.select_related(
        "organization",
        "alias",
        "snapshot",
        "snapshot__family",
        "snapshot__replacement",
        "fixed_in",
        "reporter",
    )


def _report_rows() -> QuerySet[BugReport]:
    """Reports for a list: the page's rows are read from their own table alone, and each relation
    a row shows comes in one more query for the whole page. Joining first would join every report
    of the organisation before the sort could keep a page of them (what made the list grow)."""
    return BugReport.objects.prefetch_related(
        "organization",
        "alias",
        Prefetch("snapshot", queryset=Snapshot.objects.select_related("family", "replacement")),
        "fixed_in",
    )


def bug_report_list(
    *,
    org: Organization,
    status: str | None = None,
    alias: str | None = None,
    snapshot: str | None = None,
    q: str | None = None,
) -> QuerySet[BugReport]:
    """The organisation's reports, newest first; the filters of its bug reports page and API.
    `q` looks in the alias name, the snapshot name and the response id."""
    qs = _report_rows().filter(organization=org)
    if status:
        qs = qs.filter(status=status)
    if alias:
        qs = qs.filter(alias__name=alias)
    if snapshot:
        qs = qs.filter(snapshot__name=snapshot)
    if q:
        qs = qs.filter(
            Q(alias__name__icontains=q) | Q(snapshot__name__icontains=q) | Q(response_id__icontains=q)
        )
    return qs.order_by("-created_at", "-id")


def bug_alias_suggestions(*, org: Organization, limit: int = ALIAS_SUGGESTIONS) -> list[str]:
    """At most `limit` alias names to offer when filing: the organisation's pinned aliases first,
    then the catalogue's, each by name. Two short index reads whatever the size of either (an
    organisation with more pins gets `limit` of them); any other alias may still be typed, and
    filing checks it."""
    pinned = sorted(
        Pin.objects.filter(organization=org)
        .order_by("alias_id")
        .values_list("alias__name", flat=True)[:limit]
    )
    catalogue = Alias.objects.order_by("name").values_list("name", flat=True)[:limit]
    seen = set(pinned)
    return (pinned + [name for name in catalogue if name not in seen])[:limit]


def bug_report_get(*, org: Organization, report_id: int) -> BugReport:
    report = _reports().filter(organization=org, pk=report_id).first()
    if report is None:
        raise NotFound("No such bug report in this organisation.")
    return report


def bug_report_events(*, report: BugReport) -> list[BugReportEvent]:
    return list(
        BugReportEvent.objects.filter(report=report).select_related("actor").order_by("created_at", "id")
    )


@dataclass(frozen=True)
class BugReportView:
    """Everything a customer sees about one report."""

    report: BugReport
    events: list[BugReportEvent]
    reproducibility: str
    snapshot_status: str
    terms: ContractTerms | None

    @property
    def reproducibility_label(self) -> str:
        return REPRODUCIBILITY_LABELS[self.reproducibility]

    @property
    def reproducibility_explanation(self) -> str:
        return REPRODUCIBILITY_EXPLANATIONS[self.reproducibility]

    @property
    def policy_text(self) -> str:
        return self.terms.retired_bug_policy if self.terms else ""


def bug_report_view(*, org: Organization, report_id: int, at: dt.datetime | None = None) -> BugReportView:
    report = bug_report_get(org=org, report_id=report_id)
    return bug_report_view_of(report=report, at=at)


def bug_report_views(*, reports: list[BugReport], at: dt.datetime | None = None) -> list[BugReportView]:
    """The views of several reports in two queries however many there are: every event of the
    reports at once, and the accepted terms of their organisation (a page holds one)."""
    if not reports:
        return []
    at = at or timezone.now()
    events: dict[int, list[BugReportEvent]] = {report.pk: [] for report in reports}
    for event in BugReportEvent.objects.filter(report__in=reports).order_by("created_at", "id"):
        events[event.report_id].append(event)
    organizations = {report.organization_id: report.organization for report in reports}
    terms = {org_id: bug_policy_terms(org=org) for org_id, org in organizations.items()}
    return [
        BugReportView(
            report=report,
            events=events[report.pk],
            reproducibility=reproducibility(report.snapshot, at=at),
            snapshot_status=report.snapshot.status_at(at),
            terms=terms[report.organization_id],
        )
        for report in reports
    ]


def bug_report_view_of(*, report: BugReport, at: dt.datetime | None = None) -> BugReportView:
    at = at or timezone.now()
    return BugReportView(
        report=report,
        events=bug_report_events(report=report),
        reproducibility=reproducibility(report.snapshot, at=at),
        snapshot_status=report.snapshot.status_at(at),
        terms=bug_policy_terms(org=report.organization),
    )


# --------------------------------------------------------------------------------------------
# Staff triage queue (every organisation; staff only, enforced by the views)
# --------------------------------------------------------------------------------------------


def snapshot_status_q(status: str, *, at: dt.datetime, prefix: str = "") -> Q:
    """Snapshot.status_at as a database filter, so the queue filters without loading every row."""

    def f(name: str) -> str:
        return f"{prefix}{name}"

    purged = Q(**{f("retention_until__lte"): at})
    not_purged = Q(**{f("retention_until__isnull"): True}) | Q(**{f("retention_until__gt"): at})
    retired = Q(**{f("retires_at__lte"): at}) & not_purged
    not_retired = Q(**{f("retires_at__isnull"): True}) | Q(**{f("retires_at__gt"): at})
    deprecated = Q(**{f("deprecated_at__lte"): at}) & not_retired & not_purged
    not_deprecated = Q(**{f("deprecated_at__isnull"): True}) | Q(**{f("deprecated_at__gt"): at})
    published = Q(**{f("published_at__isnull"): False})
    live = published & not_purged & not_retired & not_deprecated
    return {
        SnapshotStatus.DRAFT: Q(**{f("published_at__isnull"): True}),
        SnapshotStatus.PURGED: published & purged,
        SnapshotStatus.RETIRED: published & retired,
        SnapshotStatus.DEPRECATED: published & deprecated,
        SnapshotStatus.PREVIEW: live & Q(**{f("released_at__gt"): at}),
        SnapshotStatus.ACTIVE: live & Q(**{f("released_at__lte"): at}),
    }[status]


def bug_triage_list(
    *,
    family: str | None = None,
    snapshot_status: str | None = None,
    age: str | None = None,
    status: str | None = None,
    at: dt.datetime | None = None,
) -> QuerySet[BugReport]:
    """The staff queue, oldest open report first, filtered by family, snapshot status, age and status."""
    at = at or timezone.now()
    qs = _reports()
    if family:
        qs = qs.filter(snapshot__family__slug=family)
    if snapshot_status:
        qs = qs.filter(snapshot_status_q(snapshot_status, at=at, prefix="snapshot__"))
    if age:
        _label, min_age, max_age = AGE_BUCKETS[age]
        if min_age is not None:
            qs = qs.filter(created_at__lte=at - min_age)
        if max_age is not None:
            qs = qs.filter(created_at__gt=at - max_age)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("created_at", "id")


def bug_report_get_for_staff(*, report_id: int) -> BugReport:
    report = _reports().filter(pk=report_id).first()
    if report is None:
        raise NotFound("No such bug report.")
    return report

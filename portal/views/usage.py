"""Usage pages: an organisation's deprecated-usage report with its chart, and the staff view of who
still calls a snapshot (with CSV), both from what the serving gateways reported."""

from __future__ import annotations

import csv
import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from contracts.catalog.selectors import snapshot_get
from contracts.gateway import selectors
from portal.access import org_view

CHART_WIDTH = 720
CHART_HEIGHT = 240
CHART_LEFT = 56
CHART_RIGHT = 12
CHART_TOP = 12
CHART_BOTTOM = 28
# Colour-blind-safe palette (Okabe-Ito); the legend also names every series in text.
PALETTE = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")


@dataclass(frozen=True)
class ChartLine:
    label: str
    colour: str
    points: str
    total: int
    deprecated: bool


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lines: list[ChartLine]
    y_ticks: list[tuple[float, str]]
    x_ticks: list[tuple[float, str]]
    plot_left: int
    plot_right: int
    plot_bottom: int


def _chart(days: list[dt.date], series: list[selectors.UsageSeries], deprecated: set[str]) -> Chart:
    """Requests per day as one polyline per (alias, snapshot), scaled to the busiest day."""
    right = CHART_WIDTH - CHART_RIGHT
    bottom = CHART_HEIGHT - CHART_BOTTOM
    peak = max((max(s.daily) for s in series), default=0) or 1
    step = (right - CHART_LEFT) / max(len(days) - 1, 1)

    def y(value: float) -> float:
        return round(bottom - (bottom - CHART_TOP) * value / peak, 1)

    lines = [
        ChartLine(
            label=f"{s.alias} → {s.snapshot}",
            colour=PALETTE[n % len(PALETTE)],
            points=" ".join(f"{round(CHART_LEFT + i * step, 1)},{y(v)}" for i, v in enumerate(s.daily)),
            total=s.total,
            deprecated=s.snapshot in deprecated,
        )
        for n, s in enumerate(series)
    ]
    y_ticks = [(y(peak * f), f"{round(peak * f):,}") for f in (0, 0.5, 1)]
    x_ticks = [
        (round(CHART_LEFT + i * step, 1), day.strftime("%d %b")) for i, day in enumerate(days) if i % 7 == 0
    ]
    return Chart(CHART_WIDTH, CHART_HEIGHT, lines, y_ticks, x_ticks, CHART_LEFT, right, bottom)


@require_GET
@org_view()
def usage_page(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    deprecated = selectors.usage_deprecated(org=request.org, at=now)
    days, series = selectors.usage_series(org=request.org, at=now)
    context = {
        "deprecated": deprecated,
        "chart": _chart(days, series, {use.snapshot.name for use in deprecated}),
        "series": series,
        "days": days,
        "now": now,
    }
    return render(request, "portal/usage.html", context)


def staff_view(view: Callable) -> Callable:
    @login_required
    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapped


@require_GET
@staff_view
def staff_usage(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/staff_usage.html", {"snapshots": selectors.usage_lifecycle_snapshots()})


@require_GET
@staff_view
def staff_usage_snapshot(request: HttpRequest, snapshot_id: str) -> HttpResponse:
    snapshot = snapshot_get(name=snapshot_id)
    callers = selectors.usage_callers(snapshot=snapshot)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="callers-{snapshot.name}.csv"'
        writer = csv.writer(response)
        writer.writerow(
            ["organization", "name", "calls_7d", "calls_30d", "last_seen", "snapshot", "retires_at"]
        )
        retires = snapshot.retires_at.isoformat() if snapshot.retires_at else ""
        for caller in callers:
            writer.writerow(
                [
                    caller.org_slug,
                    caller.org_name,
                    caller.calls_7d,
                    caller.calls_30d,
                    caller.last_seen.isoformat(),
                    snapshot.name,
                    retires,
                ]
            )
        return response
    return render(
        request,
        "portal/staff_usage_snapshot.html",
        {"snapshot": snapshot, "callers": callers, "status": snapshot.status_at(timezone.now())},
    )

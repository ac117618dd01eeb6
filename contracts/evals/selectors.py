"""Reads of evals: suites an organisation may see, results, baselines and the delta of each served
snapshot to its baseline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from contracts.diffs.compute import SuiteSpec, metric_deltas
from contracts.errors import NotFound
from contracts.models import (
    EvalResult,
    EvalSuite,
    Organization,
    Pin,
    ProcurementBaseline,
    Snapshot,
)


def suites_visible(*, org: Organization) -> QuerySet[EvalSuite]:
    return EvalSuite.objects.filter(Q(owner__isnull=True) | Q(owner_id=org.pk))


def suite_spec(suite: EvalSuite) -> SuiteSpec:
    return SuiteSpec(
        slug=suite.slug,
        name=suite.name,
        owner="public" if suite.owner_id is None else "organization",
        tolerances=suite.tolerances or {},
        lower_is_better=tuple(suite.lower_is_better or ()),
    )


def eval_result_get(*, org: Organization, result_id: int) -> EvalResult:
    result = (
        EvalResult.objects.filter(pk=result_id, suite__in=suites_visible(org=org))
        .select_related("suite", "snapshot", "snapshot__family")
        .first()
    )
    if result is None:
        raise NotFound("No such eval result for this organisation.")
    return result


def eval_result_list(*, org: Organization) -> list[EvalResult]:
    return list(
        EvalResult.objects.filter(suite__in=suites_visible(org=org))
        .select_related("suite", "snapshot", "snapshot__family")
        .order_by("suite__slug", "snapshot__released_at")
    )


def baseline_list(*, org: Organization) -> list[ProcurementBaseline]:
    return list(
        ProcurementBaseline.objects.filter(organization=org, suite__in=suites_visible(org=org))
        .select_related("suite", "result", "result__snapshot", "marked_by")
        .order_by("suite__slug")
    )


@dataclass
class BaselineDelta:
    """How one snapshot compares with one procurement baseline."""

    baseline: ProcurementBaseline
    snapshot: Snapshot
    result: EvalResult | None
    metrics: list[dict[str, Any]]

    @property
    def measured(self) -> bool:
        return self.result is not None

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [m for m in self.metrics if m["regression"]]

    @property
    def meets_baseline(self) -> bool:
        """Within tolerance on every metric of the baseline (unmeasured counts as not shown to meet it)."""
        return self.measured and not self.regressions and all(m["after"] is not None for m in self.metrics)

    @property
    def is_baseline_snapshot(self) -> bool:
        return self.snapshot.pk == self.baseline.result.snapshot_id


def baseline_deltas(*, org: Organization, snapshots: list[Snapshot] | None = None) -> list[BaselineDelta]:
    """Each baseline of `org` against each snapshot (default: the snapshots the org is served).

    Three queries whatever the number of baselines and snapshots.
    """
    baselines = baseline_list(org=org)
    if not baselines:
        return []
    if snapshots is None:
        snapshots = [
            pin.snapshot
            for pin in Pin.objects.filter(organization=org).select_related("snapshot", "snapshot__family")
        ]
    unique: dict[int, Snapshot] = {s.pk: s for s in snapshots}
    results = {
        (r.suite_id, r.snapshot_id): r
        for r in EvalResult.objects.filter(
            suite_id__in=[b.suite_id for b in baselines], snapshot_id__in=list(unique)
        )
    }
    deltas = []
    for baseline in baselines:
        spec = suite_spec(baseline.suite)
        for snapshot in sorted(unique.values(), key=lambda s: s.name):
            if snapshot.family_id != baseline.result.snapshot.family_id:
                continue
            result = results.get((baseline.suite_id, snapshot.pk))
            base_scores = baseline.result.scores or {}
            scores = result.scores if result else {}
            metrics = metric_deltas(spec, base_scores, {m: scores[m] for m in base_scores if m in scores})
            deltas.append(BaselineDelta(baseline=baseline, snapshot=snapshot, result=result, metrics=metrics))
    return deltas

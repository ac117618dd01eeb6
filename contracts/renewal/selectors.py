"""Reads of renewal and audit, scoped to one organisation (404 for another's objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts.diffs.compute import metric_deltas
from contracts.errors import NotFound
from contracts.evals.selectors import suite_spec
from contracts.models import (
    OPEN_MIGRATION_STATES,
    AuditPack,
    EvalRun,
    Migration,
    Organization,
    Pin,
    ProcurementBaseline,
    Snapshot,
)


def _with_deltas(runs: list[EvalRun]) -> list[EvalRun]:
    """Attach `baseline_deltas` (regressions first) to each finished run: one query for the baselines."""
    if not runs:
        return runs
    org_id = runs[0].organization_id
    baselines = {
        b.suite_id: b
        for b in ProcurementBaseline.objects.filter(
            organization_id=org_id, suite_id__in={r.suite_id for r in runs}
        ).select_related("result")
    }
    for run in runs:
        run.baseline_deltas = _deltas(run, baselines.get(run.suite_id))
    return runs


def _deltas(run: EvalRun, baseline: ProcurementBaseline | None) -> list[dict[str, Any]]:
    if baseline is None or not run.scores:
        return []
    rows = metric_deltas(suite_spec(run.suite), baseline.result.scores or {}, run.scores)
    return sorted(rows, key=lambda m: (not m["regression"], m["metric"]))


def run_deltas(run: EvalRun) -> tuple[ProcurementBaseline | None, list[dict[str, Any]]]:
    """The run's scores against the organisation's baseline for its suite, regressions first."""
    baseline = (
        ProcurementBaseline.objects.select_related("result__snapshot", "suite")
        .filter(organization_id=run.organization_id, suite_id=run.suite_id)
        .first()
    )
    return baseline, _deltas(run, baseline)


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def delta_sentence(metric: dict[str, Any]) -> str:
    """ "accuracy fell from 0.82 to 0.79 (a regression beyond the tolerance of 0.01)"."""
    delta = metric["delta"] or 0
    verb = "fell" if delta < 0 else "rose" if delta > 0 else "stayed"
    text = f"{metric['metric']} {verb} from {_fmt(metric['before'])} to {_fmt(metric['after'])}"
    if metric["after"] is None:
        text = f"{metric['metric']} was not measured (baseline {_fmt(metric['before'])})"
    if metric["regression"]:
        text += f" (a regression beyond the tolerance of {_fmt(metric['tolerance'])})"
    return text


def eval_run_list(*, org: Organization, limit: int = 20) -> list[EvalRun]:
    return _with_deltas(
        list(
            EvalRun.objects.filter(organization=org)
            .select_related("suite", "snapshot", "requested_by", "migration")
            .order_by("-requested_at", "-id")[:limit]
        )
    )


def eval_run_get(*, org: Organization, run_id: int) -> EvalRun:
    run = (
        EvalRun.objects.filter(pk=run_id, organization=org)
        .select_related("suite", "snapshot", "requested_by", "organization")
        .first()
    )
    if run is None:
        raise NotFound("No such eval run for this organisation.")
    return _with_deltas([run])[0]


def audit_pack_list(*, org: Organization, limit: int = 20) -> list[AuditPack]:
    return list(AuditPack.objects.filter(organization=org).select_related("requested_by")[:limit])


def audit_pack_get(*, org: Organization, pack_id: int) -> AuditPack:
    pack = (
        AuditPack.objects.filter(pk=pack_id, organization=org)
        .select_related("organization", "requested_by")
        .first()
    )
    if pack is None:
        raise NotFound("No such audit pack for this organisation.")
    return pack


@dataclass
class RefreshTarget:
    """A procurement suite and the snapshots an admin may refresh it on."""

    baseline: ProcurementBaseline
    served: list[tuple[str, Snapshot]] = field(default_factory=list)  # (alias, snapshot)
    proposed: list[tuple[int, Snapshot]] = field(default_factory=list)  # (migration id, snapshot)


def refresh_targets(*, org: Organization) -> list[RefreshTarget]:
    """Per procurement baseline: the snapshots served now (by alias) and proposed in open migrations."""
    baselines = list(
        ProcurementBaseline.objects.filter(organization=org)
        .select_related("suite", "result__snapshot")
        .order_by("suite__slug")
    )
    pins = list(
        Pin.objects.filter(organization=org).select_related("alias", "snapshot").order_by("alias__name")
    )
    migrations = list(
        Migration.objects.filter(organization=org, state__in=OPEN_MIGRATION_STATES).select_related(
            "to_snapshot"
        )
    )
    targets = []
    for baseline in baselines:
        family = baseline.result.snapshot.family_id
        targets.append(
            RefreshTarget(
                baseline=baseline,
                served=[(p.alias.name, p.snapshot) for p in pins if p.snapshot.family_id == family],
                proposed=[(m.pk, m.to_snapshot) for m in migrations if m.to_snapshot.family_id == family],
            )
        )
    return targets


def migration_refresh_suites(*, org: Organization, migration: Migration) -> list[ProcurementBaseline]:
    """The procurement suites that can be refreshed on a migration's proposed snapshot."""
    return list(
        ProcurementBaseline.objects.filter(
            organization=org, result__snapshot__family_id=migration.to_snapshot.family_id
        )
        .select_related("suite", "result__snapshot")
        .order_by("suite__slug")
    )

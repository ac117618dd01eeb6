"""Writes of renewal and audit: eval refresh runs (requested by organisation admins, claimed and
answered by the vendor's eval runners) and audit packs (built by a Celery task).

A run's life: queued -> claimed (one runner holds a lease, exactly once) -> done, or back to queued when
the lease runs out (up to EVAL_RUN_MAX_ATTEMPTS claims), then failed. Results are refused unless they
come from the runner holding the current lease.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from contracts.errors import ApplicationError, Conflict, Forbidden, NotFound
from contracts.evals.selectors import suites_visible
from contracts.evals.services import eval_result_upload, validate_scores
from contracts.instants import parse_instant
from contracts.models import (
    OPEN_MIGRATION_STATES,
    OPEN_RUN_STATES,
    Alias,
    AuditPack,
    EvalResult,
    EvalRun,
    EvalRunner,
    EvalRunState,
    ExportStatus,
    Migration,
    Organization,
    Pin,
    ProcurementBaseline,
    Snapshot,
)
from contracts.outbox import organization_mail_send
from contracts.renewal import tasks
from contracts.renewal.selectors import delta_sentence, run_deltas

MAX_ALIASES = 50


def _user(acting_user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return acting_user if getattr(acting_user, "pk", None) else None


# --------------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------------


@transaction.atomic
def eval_runner_create(*, name: str) -> tuple[EvalRunner, str]:
    """A new runner and its key (returned once; only its sha256 is stored)."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApplicationError(
            "A runner name of 1 to 100 characters.", fields={"name": "1 to 100 characters"}
        )
    if EvalRunner.objects.filter(name=name).exists():
        raise Conflict(f"A runner named {name!r} exists.", fields={"name": "already taken"})
    raw = settings.EVAL_RUNNER_KEY_PREFIX + secrets.token_urlsafe(32)
    return eval_runner_store(name=name, raw_key=raw), raw


def eval_runner_store(*, name: str, raw_key: str) -> EvalRunner:
    """Store a runner with a given key (the demo's fixed key); idempotent by name."""
    runner, _ = EvalRunner.objects.get_or_create(
        name=name, defaults={"prefix": raw_key[:12], "key_hash": EvalRunner.hash_key(raw_key)}
    )
    return runner


@transaction.atomic
def eval_runners_revoke(*, runners: list[EvalRunner], at: dt.datetime | None = None) -> int:
    """Revoke runner keys; a run a revoked runner holds goes back to the queue at once."""
    at = at or timezone.now()
    ids = [r.pk for r in runners]
    revoked = EvalRunner.objects.filter(pk__in=ids, revoked_at__isnull=True).update(revoked_at=at)
    EvalRun.objects.filter(runner_id__in=ids, state=EvalRunState.CLAIMED).update(
        state=EvalRunState.QUEUED, runner=None, lease_token="", lease_until=None, progress=0,
        error="The runner holding this run was revoked; queued again.",
    )  # fmt: skip
    return revoked


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def _target(
    *, org: Organization, alias: str, snapshot: str, migration_id: int | None, errors: dict[str, str]
) -> tuple[Snapshot | None, Migration | None, str]:
    given = [
        name
        for name, value in (("alias", alias), ("snapshot", snapshot), ("migration", migration_id))
        if value
    ]
    if len(given) != 1:
        errors["alias"] = (
            "Name exactly one of alias (the snapshot you are served now), snapshot or migration."
        )
        return None, None, ""
    if alias:
        pin = (
            Pin.objects.select_related("snapshot", "snapshot__family")
            .filter(organization=org, alias__name=alias)
            .first()
        )
        if pin is None:
            errors["alias"] = f"Your organisation has no pin on an alias named {alias!r}."
            return None, None, ""
        return pin.snapshot, None, alias
    if migration_id:
        migration = (
            Migration.objects.select_related("to_snapshot", "to_snapshot__family")
            .filter(pk=migration_id, organization=org)
            .first()
        )
        if migration is None:
            raise NotFound(
                "No such migration for this organisation.", fields={"migration": str(migration_id)}
            )
        return migration.to_snapshot, migration, ""
    found = Snapshot.objects.select_related("family").filter(name=snapshot).first()
    served = found is not None and Pin.objects.filter(organization=org, snapshot=found).exists()
    proposed = (
        found is not None
        and Migration.objects.filter(
            organization=org, to_snapshot=found, state__in=OPEN_MIGRATION_STATES
        ).exists()
    )
    if not (served or proposed):
        errors["snapshot"] = (
            f"{snapshot!r} is neither a snapshot you are served nor one proposed to you in an open migration."
        )
        return None, None, ""
    return found, None, ""


@transaction.atomic
def eval_run_request(
    *,
    org: Organization,
    suite: str,
    alias: str = "",
    snapshot: str = "",
    migration_id: int | None = None,
    acting_user: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
) -> tuple[EvalRun, bool]:
    """Queue a refresh of the procurement suite `suite` on the snapshot served for `alias`, on a proposed
    `snapshot`, or on the target of `migration_id`. (run, created): an open run for the same suite and
    snapshot is returned instead of a second one. Refuses (400, nothing stored) on any bad field."""
    at = at or timezone.now()
    errors: dict[str, str] = {}
    suite_obj = suites_visible(org=org).filter(slug=suite).first() if isinstance(suite, str) else None
    baseline = None
    if suite_obj is None:
        errors["suite"] = f"Unknown eval suite {suite!r}."
    else:
        baseline = (
            ProcurementBaseline.objects.select_related("result__snapshot")
            .filter(organization=org, suite=suite_obj)
            .first()
        )
        if baseline is None:
            errors["suite"] = (
                f"{suite_obj.slug} is not a procurement suite of yours: mark a baseline for it first."
            )
    target, migration, alias_name = _target(
        org=org, alias=alias, snapshot=snapshot, migration_id=migration_id, errors=errors
    )
    if baseline is not None and target is not None and target.family_id != baseline.result.snapshot.family_id:
        errors["snapshot"] = (
            f"{target.name} is not in the family of your baseline ({baseline.result.snapshot.name})."
        )
    if errors:
        first = next(iter(errors))
        raise ApplicationError(f"Eval refresh refused: {first}: {errors[first]}", fields=errors)
    existing = EvalRun.objects.filter(
        organization=org, suite=suite_obj, snapshot=target, state__in=OPEN_RUN_STATES
    ).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            run = EvalRun.objects.create(
                organization=org, suite=suite_obj, snapshot=target, migration=migration,
                alias_name=alias_name, requested_by=_user(acting_user), requested_at=at,
            )  # fmt: skip
    except IntegrityError:  # a concurrent request queued the same run first
        return EvalRun.objects.get(
            organization=org, suite=suite_obj, snapshot=target, state__in=OPEN_RUN_STATES
        ), False
    return run, True


# --------------------------------------------------------------------------------------------
# Runners claim, report and answer
# --------------------------------------------------------------------------------------------


def _lease_end(at: dt.datetime) -> dt.datetime:
    return at + dt.timedelta(seconds=settings.EVAL_RUN_LEASE_SECONDS)


@transaction.atomic
def eval_runs_release_expired(*, at: dt.datetime | None = None) -> int:
    """Put back in the queue every claimed run whose lease ran out; a run claimed EVAL_RUN_MAX_ATTEMPTS
    times fails, and its organisation is told. Returns the runs released or failed."""
    at = at or timezone.now()
    expired = list(
        EvalRun.objects.select_for_update(skip_locked=True)
        .filter(state=EvalRunState.CLAIMED, lease_until__lt=at)
        .select_related("organization", "suite", "snapshot")
    )
    for run in expired:
        if run.attempts >= settings.EVAL_RUN_MAX_ATTEMPTS:
            run.state = EvalRunState.FAILED
            run.error = f"No result after {run.attempts} claims: each lease ran out."
            run.finished_at = at
        else:
            run.state = EvalRunState.QUEUED
            run.error = f"Lease of runner #{run.runner_id} ran out at {run.lease_until:%Y-%m-%d %H:%M:%S} UTC; queued again."
        run.runner = None
        run.lease_token = ""
        run.lease_until = None
        run.progress = 0
        run.save(
            update_fields=[
                "state",
                "error",
                "finished_at",
                "runner",
                "lease_token",
                "lease_until",
                "progress",
            ]
        )
        if run.state == EvalRunState.FAILED:
            _notify_failed(run)
    return len(expired)


def eval_run_claim(*, runner: EvalRunner, at: dt.datetime | None = None) -> EvalRun | None:
    """The oldest queued run, leased to `runner`, or None. Exactly once: on PostgreSQL the candidate
    row is locked with FOR UPDATE SKIP LOCKED, so concurrent claimers take different runs; everywhere the
    claim is a compare-and-set on the queued state (on SQLite, writers are serialised besides)."""
    at = at or timezone.now()
    eval_runs_release_expired(at=at)
    for _ in range(5):
        with transaction.atomic():
            run = (
                EvalRun.objects.select_for_update(skip_locked=True)
                .filter(state=EvalRunState.QUEUED)
                .order_by("requested_at", "id")
                .first()
            )
            if run is None:
                return None
            token = secrets.token_hex(16)
            claimed = EvalRun.objects.filter(pk=run.pk, state=EvalRunState.QUEUED).update(
                state=EvalRunState.CLAIMED, runner=runner, lease_token=token, lease_until=_lease_end(at),
                claimed_at=at, attempts=run.attempts + 1, progress=0,
            )  # fmt: skip
            if claimed:
                return EvalRun.objects.select_related("suite", "snapshot", "organization").get(pk=run.pk)
    return None


def _leased(*, runner: EvalRunner, run_id: int, lease_token: str, at: dt.datetime) -> EvalRun:
    run = (
        EvalRun.objects.select_for_update()
        .select_related("suite", "snapshot", "organization")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise NotFound(f"No eval run #{run_id}.")
    if run.runner_id != runner.pk:
        raise Forbidden(
            f"Eval run #{run.pk} is not claimed by this runner.",
            fields={"run": "claimed by another runner" if run.runner_id else f"not claimed ({run.state})"},
        )
    if run.state != EvalRunState.CLAIMED or not secrets.compare_digest(run.lease_token, lease_token or ""):
        raise Conflict(
            f"The lease on eval run #{run.pk} is not yours any more (it ran out or the run is {run.state}).",
            fields={"lease": "stale or unknown lease token: claim again"},
        )
    if run.lease_until is not None and run.lease_until < at:
        raise Conflict(
            f"The lease on eval run #{run.pk} ran out at {run.lease_until.isoformat()}.",
            fields={"lease": "expired: the run goes back to the queue"},
        )
    return run


@transaction.atomic
def eval_run_progress(
    *, runner: EvalRunner, run_id: int, lease_token: str, progress: int, at: dt.datetime | None = None
) -> EvalRun:
    """A runner's progress report (0-100); extends its lease."""
    at = at or timezone.now()
    if isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100:
        raise ApplicationError(
            "progress is a whole percentage.", fields={"progress": "an integer from 0 to 100"}
        )
    run = _leased(runner=runner, run_id=run_id, lease_token=lease_token, at=at)
    run.progress = max(run.progress, progress)
    run.lease_until = _lease_end(at)
    run.save(update_fields=["progress", "lease_until"])
    return run


@transaction.atomic
def eval_run_complete(
    *,
    runner: EvalRunner,
    run_id: int,
    lease_token: str,
    suite: Any,
    snapshot: Any,
    scores: Any,
    cases: Any = None,
    at: dt.datetime | None = None,
) -> EvalRun:
    """Accept a runner's results (the eval upload format) for the run it holds; the customer is told.

    Refused with nothing stored: a run not claimed by this runner (403), a stale lease (409), a suite or
    snapshot other than the run's, an unknown metric or a bad score (400)."""
    at = at or timezone.now()
    run = _leased(runner=runner, run_id=run_id, lease_token=lease_token, at=at)
    errors: dict[str, str] = {}
    if suite != run.suite.slug:
        errors["suite"] = f"Run #{run.pk} is of suite {run.suite.slug!r}, not {suite!r}."
    if snapshot != run.snapshot.name:
        errors["snapshot"] = f"Run #{run.pk} is on snapshot {run.snapshot.name!r}, not {snapshot!r}."
    errors.update(validate_scores(suite=run.suite, scores=scores))
    if cases is not None and (not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases)):
        errors["cases"] = "Must be a list of per-case outcomes (objects), or omitted."
    if errors:
        first = next(iter(errors))
        raise ApplicationError(f"Eval results refused: {first}: {errors[first]}", fields=errors)
    normalised = {
        metric: {
            "score": float(entry["score"]),
            "subsets": {name: float(value) for name, value in (entry.get("subsets") or {}).items()},
        }
        for metric, entry in scores.items()
    }
    if not EvalResult.objects.filter(suite=run.suite, snapshot=run.snapshot).exists():
        # The snapshot had no result for this suite: this measurement becomes the catalogue's.
        run.result = eval_result_upload(
            suite=run.suite.slug, snapshot=run.snapshot.name, scores=scores, cases=cases
        )
    run.scores = normalised
    run.cases = cases
    run.state = EvalRunState.DONE
    run.progress = 100
    run.finished_at = at
    run.lease_until = None
    run.error = ""
    run.save(
        update_fields=[
            "result",
            "scores",
            "cases",
            "state",
            "progress",
            "finished_at",
            "lease_until",
            "error",
        ]
    )
    _notify_done(run)
    return run


# --------------------------------------------------------------------------------------------
# Telling the customer (through contracts.outbox: sent once per run)
# --------------------------------------------------------------------------------------------


def _notify_done(run: EvalRun) -> None:
    baseline, rows = run_deltas(run)
    regressions = [m for m in rows if m["regression"]]
    url = f"{settings.SITE_URL}/o/{run.organization.slug}/baselines/#run-{run.pk}"
    lines = [
        f"The refreshed eval you asked for is in: {run.suite.name} ({run.suite.slug}) on {run.snapshot.name}.",
        "",
    ]
    if baseline is not None:
        lines.append(
            f"Against your procurement baseline ({baseline.result.snapshot.name}, marked "
            f"{baseline.marked_at:%Y-%m-%d}): "
            + (f"{len(regressions)} regression(s)." if regressions else "no regression beyond tolerance.")
        )
        lines += [f"- {delta_sentence(m)}" for m in rows]
    lines += ["", f"Details: {url}"]
    organization_mail_send(
        org=run.organization,
        kind="eval-refreshed",
        subject=f"Eval refreshed: {run.suite.name} on {run.snapshot.name}"
        + (f" ({len(regressions)} regression{'s' if len(regressions) != 1 else ''})" if regressions else ""),
        body="\n".join(lines) + "\n",
        dedupe_key=f"eval-run:{run.pk}",
        webhook_event="eval.refreshed",
        webhook_data={
            "run": run.pk, "suite": run.suite.slug, "snapshot": run.snapshot.name,
            "baseline_snapshot": baseline.result.snapshot.name if baseline else None,
            "regressions": [m["metric"] for m in regressions],
            "metrics": [{k: m[k] for k in ("metric", "before", "after", "delta", "regression")} for m in rows],
        },
    )  # fmt: skip


def _notify_failed(run: EvalRun) -> None:
    organization_mail_send(
        org=run.organization,
        kind="eval-refresh-failed",
        subject=f"Eval refresh failed: {run.suite.name} on {run.snapshot.name}",
        body=(
            f"The refresh of {run.suite.name} on {run.snapshot.name} (run #{run.pk}) did not complete: "
            f"{run.error}\nAsk for it again from the baselines page; the vendor has been told.\n"
        ),
        dedupe_key=f"eval-run-failed:{run.pk}",
    )


# --------------------------------------------------------------------------------------------
# Audit packs
# --------------------------------------------------------------------------------------------


def _period_bound(name: str, value: Any, *, end_of_day: bool) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise ApplicationError(
            f"'{name}' must be an ISO 8601 date or date-time.", fields={name: "ISO 8601 date or date-time"}
        )
    return parse_instant(value, field=name, end_of_day=end_of_day, bounded=True)


@transaction.atomic
def audit_pack_request(
    *,
    org: Organization,
    aliases: Any = None,
    period_from: Any = None,
    period_to: Any = None,
    acting_user: AbstractBaseUser | None = None,
    at: dt.datetime | None = None,
) -> AuditPack:
    """Queue the audit pack of `org` (optionally some aliases, a period). Refuses (400, nothing stored)
    an alias the organisation has no pin on, or a period that ends before it starts."""
    at = at or timezone.now()
    errors: dict[str, str] = {}
    names: list[str] = []
    if aliases not in (None, "", []):
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            errors["aliases"] = "A list of alias names."
        elif len(aliases) > MAX_ALIASES:
            errors["aliases"] = f"At most {MAX_ALIASES} aliases."
        else:
            names = sorted({a.strip() for a in aliases if a.strip()})
            pinned = set(
                Pin.objects.filter(organization=org, alias__name__in=names).values_list(
                    "alias__name", flat=True
                )
            )
            unknown = [n for n in names if n not in pinned]
            if unknown:
                known = Alias.objects.filter(name__in=unknown).exists()
                errors["aliases"] = f"Your organisation has no pin on {', '.join(unknown)}" + (
                    " (an alias of the catalogue you are not served)." if known else "."
                )
    start = end = None
    try:
        start = _period_bound("from", period_from, end_of_day=False)
    except ApplicationError as exc:
        errors.update(exc.fields)
    try:
        end = _period_bound("to", period_to, end_of_day=True)
    except ApplicationError as exc:
        errors.update(exc.fields)
    if start and end and end < start:
        errors["to"] = f"The period ends ({end:%Y-%m-%d %H:%M}) before it starts ({start:%Y-%m-%d %H:%M})."
    if errors:
        first = next(iter(errors))
        raise ApplicationError(f"Audit pack refused: {first}: {errors[first]}", fields=errors)
    pack = AuditPack.objects.create(
        organization=org, requested_by=_user(acting_user), aliases=names,
        period_from=start, period_to=end, created_at=at,
    )  # fmt: skip
    transaction.on_commit(lambda: tasks.audit_pack_build.delay(pack.pk))
    return pack


def audit_pack_mark(*, pack_id: int, **fields: Any) -> None:
    AuditPack.objects.filter(pk=pack_id).update(**fields)


def audit_pack_fail(*, pack_id: int, error: str) -> None:
    audit_pack_mark(
        pack_id=pack_id, status=ExportStatus.FAILED, error=error[:2000], finished_at=timezone.now()
    )

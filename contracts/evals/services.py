"""Writes of evals: result and golden-sample uploads (staff), procurement baselines (organisation admins)."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from contracts.errors import ApplicationError, Conflict, NotFound
from contracts.evals.selectors import suites_visible
from contracts.ledger.chain import ledger_append
from contracts.models import (
    EvalResult,
    EvalSuite,
    GoldenSample,
    LedgerAction,
    Organization,
    ProcurementBaseline,
    Snapshot,
)

MAX_METRICS = 200


MAX_SUBSETS = 200


MAX_NAME = 100


MAX_SAMPLES = 1000


MAX_OUTPUT_CHARS = 100_000


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _validate_name(value: Any, *, field: str, errors: dict[str, str]) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        errors[field] = f"Must be a non-empty name of at most {MAX_NAME} characters."


def validate_scores(*, suite: EvalSuite, scores: Any) -> dict[str, str]:
    """Field errors of a scores object: {metric: {"score": number, "subsets": {name: number}}}."""
    errors: dict[str, str] = {}
    if not isinstance(scores, dict) or not scores:
        return {"scores": 'Must be a non-empty object: {metric: {"score": number, "subsets": {...}}}.'}
    if len(scores) > MAX_METRICS:
        return {"scores": f"At most {MAX_METRICS} metrics."}
    declared = set(suite.tolerances or {}) | set(suite.lower_is_better or [])
    for metric in sorted(declared - set(scores)):
        errors[f"scores.{metric}"] = f"Missing: suite {suite.slug} defines the metric {metric!r}."
    for metric, entry in scores.items():
        path = f"scores.{metric}"
        if not metric or len(metric) > MAX_NAME:
            errors[path] = f"Metric names are 1 to {MAX_NAME} characters."
            continue
        if declared and metric not in declared:
            errors[path] = f"Not a metric of suite {suite.slug} (known: {', '.join(sorted(declared))})."
            continue
        if not isinstance(entry, dict):
            errors[path] = 'Must be an object with a numeric "score".'
            continue
        if "score" not in entry:
            errors[f"{path}.score"] = "Missing: a number is required."
        elif not _is_number(entry["score"]):
            errors[f"{path}.score"] = "Must be a finite number."
        extra = set(entry) - {"score", "subsets"}
        if extra:
            errors[path] = f"Unknown key(s): {', '.join(sorted(map(str, extra)))}; allowed: score, subsets."
        subsets = entry.get("subsets", {})
        if subsets is None:
            continue
        if not isinstance(subsets, dict):
            errors[f"{path}.subsets"] = "Must be an object {subset: number}."
            continue
        if len(subsets) > MAX_SUBSETS:
            errors[f"{path}.subsets"] = f"At most {MAX_SUBSETS} subsets."
            continue
        for name, value in subsets.items():
            if not name or len(name) > MAX_NAME:
                errors[f"{path}.subsets"] = f"Subset names are 1 to {MAX_NAME} characters."
            elif not _is_number(value):
                errors[f"{path}.subsets.{name}"] = "Must be a finite number."
    return errors


@transaction.atomic
def eval_result_upload(
    *,
    suite: str,
    snapshot: str,
    scores: Any,
    cases: Any = None,
    acting_user: AbstractBaseUser | None = None,
) -> EvalResult:
    """Store the scores of one suite on one snapshot; refuses (400, nothing stored) on any bad field."""
    errors: dict[str, str] = {}
    suite_obj = EvalSuite.objects.filter(slug=suite).first() if isinstance(suite, str) else None
    if suite_obj is None:
        errors["suite"] = f"Unknown eval suite {suite!r}."
    snapshot_obj = Snapshot.objects.filter(name=snapshot).first() if isinstance(snapshot, str) else None
    if snapshot_obj is None:
        errors["snapshot"] = f"Unknown snapshot {snapshot!r}."
    if suite_obj is not None:
        errors.update(validate_scores(suite=suite_obj, scores=scores))
    elif not isinstance(scores, dict) or not scores:
        errors["scores"] = "Must be a non-empty object."
    if cases is not None and not isinstance(cases, list):
        errors["cases"] = "Must be a list of per-case outcomes (objects), or omitted."
    elif cases is not None and not all(isinstance(case, dict) for case in cases):
        errors["cases"] = "Every case must be an object."
    if errors:
        first = next(iter(errors))
        raise ApplicationError(f"Eval upload refused: {first}: {errors[first]}", fields=errors)
    if EvalResult.objects.filter(suite=suite_obj, snapshot=snapshot_obj).exists():
        raise Conflict(
            f"{suite_obj.slug} already has a result on {snapshot_obj.name}.",
            fields={
                "snapshot": "A result for this suite and snapshot exists; results are evidence and are not replaced."
            },
        )
    normalised = {
        metric: {
            "score": float(entry["score"]),
            "subsets": {name: float(value) for name, value in (entry.get("subsets") or {}).items()},
        }
        for metric, entry in scores.items()
    }
    return EvalResult.objects.create(
        suite=suite_obj,
        snapshot=snapshot_obj,
        scores=normalised,
        cases=cases,
        uploaded_by=acting_user if getattr(acting_user, "pk", None) else None,
    )


@transaction.atomic
def golden_samples_upload(*, snapshot: Snapshot, samples: Any) -> list[GoldenSample]:
    """Create or replace golden samples (prompt id → output) of one snapshot, all or nothing."""
    errors: dict[str, str] = {}
    if not isinstance(samples, list) or not samples:
        raise ApplicationError(
            "samples must be a non-empty list.", fields={"samples": "Non-empty list required."}
        )
    if len(samples) > MAX_SAMPLES:
        raise ApplicationError(
            f"At most {MAX_SAMPLES} samples per upload.", fields={"samples": f"At most {MAX_SAMPLES}."}
        )
    seen: set[str] = set()
    for index, sample in enumerate(samples):
        path = f"samples[{index}]"
        if not isinstance(sample, dict):
            errors[path] = "Must be an object with prompt_id, output and optional prompt."
            continue
        _validate_name(sample.get("prompt_id"), field=f"{path}.prompt_id", errors=errors)
        if sample.get("prompt_id") in seen:
            errors[f"{path}.prompt_id"] = "Duplicate prompt_id in this upload."
        if isinstance(sample.get("prompt_id"), str):
            seen.add(sample["prompt_id"])
        output = sample.get("output")
        if not isinstance(output, str) or len(output) > MAX_OUTPUT_CHARS:
            errors[f"{path}.output"] = f"Must be text of at most {MAX_OUTPUT_CHARS} characters."
        prompt = sample.get("prompt", "")
        if not isinstance(prompt, str) or len(prompt) > MAX_OUTPUT_CHARS:
            errors[f"{path}.prompt"] = f"Must be text of at most {MAX_OUTPUT_CHARS} characters."
    if errors:
        first = next(iter(errors))
        raise ApplicationError(f"Golden sample upload refused: {first}: {errors[first]}", fields=errors)
    stored = []
    for sample in samples:
        obj, _ = GoldenSample.objects.update_or_create(
            snapshot=snapshot,
            prompt_id=sample["prompt_id"],
            defaults={"prompt": sample.get("prompt", ""), "output": sample["output"]},
        )
        stored.append(obj)
    return stored


@transaction.atomic
def baseline_mark(
    *,
    org: Organization,
    result: EvalResult,
    acting_user: AbstractBaseUser | None = None,
    ip: str | None = None,
    user_agent: str = "",
) -> ProcurementBaseline:
    """Make `result` the organisation's procurement baseline for its suite (a ledger record)."""
    if not suites_visible(org=org).filter(pk=result.suite_id).exists():
        raise NotFound("No such eval result for this organisation.")
    current = (
        ProcurementBaseline.objects.select_for_update()
        .filter(organization=org, suite_id=result.suite_id)
        .first()
    )
    previous = current.result_id if current else None
    if current is not None and current.result_id == result.pk:
        return current
    if current is None:
        baseline = ProcurementBaseline.objects.create(
            organization=org,
            suite_id=result.suite_id,
            result=result,
            marked_by=acting_user if getattr(acting_user, "pk", None) else None,
        )
    else:
        current.result = result
        current.marked_by = acting_user if getattr(acting_user, "pk", None) else None
        current.marked_at = timezone.now()
        current.save(update_fields=["result", "marked_by", "marked_at"])
        baseline = current
    ledger_append(
        org=org,
        action=LedgerAction.BASELINE,
        acting_user=acting_user,
        to_snapshot=result.snapshot.name,
        details={
            "suite": result.suite.slug,
            "result_id": result.pk,
            "snapshot": result.snapshot.name,
            "previous_result_id": previous,
            "scores": {metric: entry.get("score") for metric, entry in sorted(result.scores.items())},
        },
        ip=ip,
        user_agent=user_agent,
        at=baseline.marked_at,
    )
    return baseline

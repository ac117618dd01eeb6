"""Diffs between two snapshots of one family, as one JSON-ready document that every format renders."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from contracts.canonical import canonical_json
from contracts.diffs import compute
from contracts.errors import ApplicationError, NotFound
from contracts.evals.selectors import suite_spec
from contracts.models import ChangelogEntry, EvalResult, GoldenSample, Organization, Snapshot

SCHEMA_VERSION = "1.0"


FORMATS = ("json", "md", "html", "pdf")


CONTENT_TYPES = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}


# Above this many rows (subsets + metrics + golden samples + config changes) a PDF takes more than
# about 2 s (~5 ms a row, tests/bench/test_diff_speed.py): it is rendered by the Celery task instead.
PDF_SYNC_MAX_ROWS = 300


def diff_rows(document: dict[str, Any]) -> int:
    summary = document["summary"]
    subsets = sum(len(m["subsets"]) for s in document["evals"] for m in s["metrics"])
    return subsets + summary["metrics_compared"] + summary["golden_samples"] + summary["config_changes"]


def pdf_renders_inline(document: dict[str, Any]) -> bool:
    return diff_rows(document) <= getattr(settings, "DIFF_PDF_SYNC_MAX_ROWS", PDF_SYNC_MAX_ROWS)


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value else None


class DiffDocument(dict):
    """The diff as a dict, carrying the canonical JSON of its content (hashed once, served as is)."""

    canonical: bytes = b""


def content_sha256(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of the document without `generated_at` and `content_sha256`."""
    content = {k: v for k, v in document.items() if k not in ("generated_at", "content_sha256")}
    return hashlib.sha256(canonical_json(content)).hexdigest()


def diff_filename(a: str, b: str, fmt: str) -> str:
    return f"diff_{a}...{b}.{fmt}"


def diff_snapshots(*, a: str, b: str) -> tuple[Snapshot, Snapshot]:
    """The two published snapshots (404 for an unknown id; 400 when their families differ)."""
    found = {
        s.name: s
        for s in Snapshot.objects.filter(name__in={a, b}, published_at__isnull=False).select_related("family")
    }
    for name in (a, b):
        if name not in found:
            raise NotFound(f"No snapshot {name!r}.")
    snap_a, snap_b = found[a], found[b]
    if snap_a.family_id != snap_b.family_id:
        raise ApplicationError(
            f"{a} ({snap_a.family.slug}) and {b} ({snap_b.family.slug}) are of different families; "
            "a diff compares two snapshots of one family.",
            fields={"b": f"Must be a snapshot of the {snap_a.family.slug} family, like {a}."},
            code="different_families",
        )
    return snap_a, snap_b


def _snapshot_facts(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "id": snapshot.name,
        "digest": snapshot.digest,
        "released_at": _iso(snapshot.released_at),
        "deprecated_at": _iso(snapshot.deprecated_at),
        "retires_at": _iso(snapshot.retires_at),
    }


def _figures(snapshot: Snapshot) -> dict[str, Any]:
    context_window = (snapshot.config or {}).get("context_window")
    return {
        "price_input_per_mtok": snapshot.price_input_per_mtok,
        "price_output_per_mtok": snapshot.price_output_per_mtok,
        "latency_p50_ms": snapshot.latency_p50_ms,
        "context_window": context_window if compute._number(context_window) is not None else None,
    }


def _changelog(snap_a: Snapshot, snap_b: Snapshot) -> list[dict[str, Any]]:
    """Entries of the snapshots released after the older one, up to and including the newer one."""
    older, newer = sorted((snap_a, snap_b), key=lambda s: (s.released_at, s.pk))
    if older.pk == newer.pk:
        return []
    entries = (
        ChangelogEntry.objects.filter(
            snapshot__family_id=older.family_id,
            snapshot__released_at__gt=older.released_at,
            snapshot__released_at__lte=newer.released_at,
        )
        .select_related("snapshot")
        .order_by("snapshot__released_at", "published_at", "id")
    )
    return [
        {
            "snapshot": entry.snapshot.name,
            "kind": entry.kind,
            "title": entry.title,
            "body": entry.body,
            "published_at": _iso(entry.published_at),
        }
        for entry in entries
    ]


def diff_build(*, org: Organization, a: str, b: str, at: dt.datetime | None = None) -> dict[str, Any]:
    """The diff document of snapshot `a` → `b` as `org` may see it (public suites and its own)."""

    snap_a, snap_b = diff_snapshots(a=a, b=b)
    if snap_a.released_at < snap_b.released_at:
        direction = "forward"
    elif snap_a.released_at > snap_b.released_at:
        direction = "backward"
    else:
        direction = "same"

    results = list(
        EvalResult.objects.filter(snapshot_id__in={snap_a.pk, snap_b.pk})
        .filter(Q(suite__owner__isnull=True) | Q(suite__owner_id=org.pk))
        .select_related("suite")
        .only(
            "snapshot_id",
            "scores",
            "suite__slug",
            "suite__name",
            "suite__owner_id",
            "suite__tolerances",
            "suite__lower_is_better",
        )
    )
    specs = {r.suite.slug: suite_spec(r.suite) for r in results}
    scores_a = {r.suite.slug: r.scores for r in results if r.snapshot_id == snap_a.pk}
    scores_b = {r.suite.slug: r.scores for r in results if r.snapshot_id == snap_b.pk}

    samples_a: dict[str, tuple[str, str]] = {}
    samples_b: dict[str, tuple[str, str]] = {}
    for snapshot_id, prompt_id, prompt, output in GoldenSample.objects.filter(
        snapshot_id__in={snap_a.pk, snap_b.pk}
    ).values_list("snapshot_id", "prompt_id", "prompt", "output"):
        if snapshot_id == snap_a.pk:
            samples_a[prompt_id] = (prompt, output)
        if snapshot_id == snap_b.pk:
            samples_b[prompt_id] = (prompt, output)

    config = compute.config_diff(snap_a.config or {}, snap_b.config or {})
    figures = compute.figure_diff(_figures(snap_a), _figures(snap_b))
    changelog = _changelog(snap_a, snap_b)
    evals = compute.eval_deltas(specs.values(), scores_a, scores_b)
    golden = compute.golden_pairs(samples_a, samples_b)
    content: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "organization": org.slug,
        "family": snap_a.family.slug,
        "a": _snapshot_facts(snap_a),
        "b": _snapshot_facts(snap_b),
        "direction": direction,
        "summary": compute.summarise(
            config=config, figures=figures, changelog=changelog, evals=evals, golden_samples=golden
        ),
        "config": config,
        "figures": figures,
        "changelog": changelog,
        "evals": evals,
        "golden_samples": golden,
    }
    document = DiffDocument(content)
    document.canonical = canonical_json(content)
    document["generated_at"] = _iso(at or timezone.now())
    document["content_sha256"] = hashlib.sha256(document.canonical).hexdigest()
    return document


def diff_format_parse(value: str | None) -> str:
    fmt = (value or "json").lower()
    if fmt not in FORMATS:
        raise ApplicationError(
            f"format must be one of {', '.join(FORMATS)}.",
            fields={"format": f"One of: {', '.join(FORMATS)}."},
        )
    return fmt

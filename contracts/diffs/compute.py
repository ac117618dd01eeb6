"""Pure functions that compare two snapshots. No database, no Django: plain data in, plain data out.

Numbers are floats rounded to 9 decimals, so a delta is exactly the negation of the swapped delta and
a drop of exactly the tolerance is not counted as a regression because of floating-point noise.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DIGITS = 9
MISSING = object()

# Status of one compared number, seen from a (before) to b (after).
SAME, BETTER, WORSE, REGRESSION, MISSING_STATUS = "same", "better", "worse", "regression", "missing"


def _number(value: Any) -> float | None:
    if value is None or value.__class__ is bool:
        return None
    return round(float(value), DIGITS)


def _delta(before: float | None, after: float | None) -> float | None:
    if before is None or after is None:
        return None
    return round(after - before, DIGITS)


# --------------------------------------------------------------------------------------------
# Config: nested, key by key
# --------------------------------------------------------------------------------------------


def config_diff(
    before: Mapping[str, Any], after: Mapping[str, Any], *, prefix: str = ""
) -> list[dict[str, Any]]:
    """Every key path that was added, removed or changed; nested objects are walked key by key.

    Lists and scalars are compared as whole values. Paths are dotted (`default_sampling.top_p`).
    """
    changes: list[dict[str, Any]] = []
    for key in sorted(set(before) | set(after), key=str):
        path = f"{prefix}{key}"
        old = before.get(key, MISSING)
        new = after.get(key, MISSING)
        if old is MISSING:
            changes.append({"path": path, "change": "added", "before": None, "after": new})
        elif new is MISSING:
            changes.append({"path": path, "change": "removed", "before": old, "after": None})
        elif isinstance(old, Mapping) and isinstance(new, Mapping):
            changes.extend(config_diff(old, new, prefix=f"{path}."))
        elif old != new or type(old) is not type(new):
            changes.append({"path": path, "change": "changed", "before": old, "after": new})
    return changes


# --------------------------------------------------------------------------------------------
# Price, context window, latency
# --------------------------------------------------------------------------------------------

FIGURES = (
    ("price_input_per_mtok", "Input price", "USD per million tokens", True),
    ("price_output_per_mtok", "Output price", "USD per million tokens", True),
    ("context_window", "Context window", "tokens", False),
    ("latency_p50_ms", "Latency p50", "ms", True),
)


def figure_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Changes of the commercial and operational figures, where at least one side knows them."""
    rows = []
    for name, label, unit, lower_is_better in FIGURES:
        old, new = _number(before.get(name)), _number(after.get(name))
        if old is None and new is None:
            continue
        delta = _delta(old, new)
        rows.append(
            {
                "field": name,
                "label": label,
                "unit": unit,
                "lower_is_better": lower_is_better,
                "before": old,
                "after": new,
                "delta": delta,
                "changed": old != new,
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# Evals
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteSpec:
    slug: str
    name: str
    owner: str  # "public" or "organization"
    tolerances: Mapping[str, Any] = field(default_factory=dict)
    lower_is_better: Iterable[str] = ()


def judge(delta: float | None, *, tolerance: float, lower_is_better: bool) -> tuple[str, bool]:
    """(status, regression) of one delta: a regression is a change for the worse beyond the tolerance."""
    if delta is None:
        return MISSING_STATUS, False
    gain = -delta if lower_is_better else delta
    if gain == 0:
        return SAME, False
    if gain > 0:
        return BETTER, False
    if -gain > tolerance:
        return REGRESSION, True
    return WORSE, False


def _score(entry: Any) -> float | None:
    if isinstance(entry, Mapping):
        return _number(entry.get("score"))
    return None


def _subsets(entry: Any) -> Mapping[str, Any]:
    if isinstance(entry, Mapping) and isinstance(entry.get("subsets"), Mapping):
        return entry["subsets"]
    return {}


def metric_deltas(
    spec: SuiteSpec, before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """Per metric and per subset: before, after, delta, and the verdict against the suite tolerance."""
    before = before or {}
    after = after or {}
    lower = set(spec.lower_is_better)
    rows = []
    for metric in sorted(set(before) | set(after)):
        tolerance = abs(_number(spec.tolerances.get(metric)) or 0.0)
        lib = metric in lower
        old, new = _score(before.get(metric)), _score(after.get(metric))
        delta = _delta(old, new)
        status, regression = judge(delta, tolerance=tolerance, lower_is_better=lib)
        old_subsets, new_subsets = _subsets(before.get(metric)), _subsets(after.get(metric))
        subsets = []
        # The hot loop of a large diff (suites x metrics x subsets): kept flat on purpose.
        for name in sorted(old_subsets.keys() | new_subsets.keys()):
            s_old, s_new = _number(old_subsets.get(name)), _number(new_subsets.get(name))
            s_delta = None if s_old is None or s_new is None else round(s_new - s_old, DIGITS)
            s_status, s_regression = judge(s_delta, tolerance=tolerance, lower_is_better=lib)
            subsets.append(
                {
                    "subset": name,
                    "before": s_old,
                    "after": s_new,
                    "delta": s_delta,
                    "status": s_status,
                    "regression": s_regression,
                }
            )
        rows.append(
            {
                "metric": metric,
                "before": old,
                "after": new,
                "delta": delta,
                "tolerance": tolerance,
                "lower_is_better": lib,
                "status": status,
                "regression": regression,
                "subsets": subsets,
            }
        )
    return rows


def eval_deltas(
    specs: Iterable[SuiteSpec],
    scores_a: Mapping[str, Mapping[str, Any]],
    scores_b: Mapping[str, Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """One entry per suite that has a result on either side (scores keyed by suite slug)."""
    suites = []
    for spec in sorted(specs, key=lambda s: s.slug):
        if spec.slug not in scores_a and spec.slug not in scores_b:
            continue
        suites.append(
            {
                "suite": spec.slug,
                "name": spec.name,
                "owner": spec.owner,
                "has_before": spec.slug in scores_a,
                "has_after": spec.slug in scores_b,
                "metrics": metric_deltas(spec, scores_a.get(spec.slug), scores_b.get(spec.slug)),
            }
        )
    return suites


# --------------------------------------------------------------------------------------------
# Golden samples: side by side with a word-level diff
# --------------------------------------------------------------------------------------------

# A word with the whitespace after it; leading whitespace is a token of its own.
TOKEN_RE = re.compile(r"^\s+|\S+\s*")


def word_diff(before: str, after: str) -> list[dict[str, str]]:
    """Operations (equal / delete / insert) over words; whitespace changes show as such.

    Joining equal+delete texts gives `before`; joining equal+insert texts gives `after`. Words are
    matched without their trailing whitespace, and the common head and tail are split off first,
    so a small edit in a long output costs little.
    """
    old, new = TOKEN_RE.findall(before), TOKEN_RE.findall(after)
    old_keys = [t.rstrip() or t for t in old]
    new_keys = [t.rstrip() or t for t in new]
    ops: list[dict[str, str]] = []

    def emit(op: str, text: str) -> None:
        if not text:
            return
        if ops and ops[-1]["op"] == op:
            ops[-1]["text"] += text
        else:
            ops.append({"op": op, "text": text})

    def equal(i1: int, i2: int, j1: int) -> None:
        for offset in range(i2 - i1):
            a, b = old[i1 + offset], new[j1 + offset]
            if a == b:
                emit("equal", a)
            else:
                word = old_keys[i1 + offset]
                emit("equal", word)
                emit("delete", a[len(word) :])
                emit("insert", b[len(word) :])

    def changed(i1: int, i2: int, j1: int, j2: int) -> None:
        emit("delete", "".join(old[i1:i2]))
        emit("insert", "".join(new[j1:j2]))

    limit = min(len(old), len(new))
    head = 0
    while head < limit and old_keys[head] == new_keys[head]:
        head += 1
    tail = 0
    while tail < limit - head and old_keys[-1 - tail] == new_keys[-1 - tail]:
        tail += 1
    equal(0, head, 0)
    end_old, end_new = len(old) - tail, len(new) - tail
    matcher = difflib.SequenceMatcher(None, old_keys[head:end_old], new_keys[head:end_new], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            equal(head + i1, head + i2, head + j1)
        else:
            changed(head + i1, head + i2, head + j1, head + j2)
    equal(end_old, len(old), end_new)
    return ops


def golden_pairs(
    samples_a: Mapping[str, tuple[str, str]], samples_b: Mapping[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    """Pairs by prompt id: {prompt_id: (prompt, output)} on each side."""
    rows = []
    for prompt_id in sorted(set(samples_a) | set(samples_b)):
        prompt_a, out_a = samples_a.get(prompt_id, (None, None))
        prompt_b, out_b = samples_b.get(prompt_id, (None, None))
        changed = out_a != out_b
        rows.append(
            {
                "prompt_id": prompt_id,
                "prompt": prompt_b if prompt_b is not None else prompt_a,
                "before": out_a,
                "after": out_b,
                "changed": changed,
                "diff": word_diff(out_a or "", out_b or "") if changed else [],
            }
        )
    return rows


# --------------------------------------------------------------------------------------------
# The summary, and what "no difference" means
# --------------------------------------------------------------------------------------------


def summarise(
    *,
    config: list[dict[str, Any]],
    figures: list[dict[str, Any]],
    changelog: list[dict[str, Any]],
    evals: list[dict[str, Any]],
    golden_samples: list[dict[str, Any]],
) -> dict[str, int]:
    metrics = [m for suite in evals for m in suite["metrics"]]
    subsets = [s for m in metrics for s in m["subsets"]]
    return {
        "config_changes": len(config),
        "figure_changes": sum(1 for row in figures if row["changed"]),
        "changelog_entries": len(changelog),
        "suites": len(evals),
        "metrics_compared": len(metrics),
        "metrics_changed": sum(1 for m in metrics if m["status"] not in (SAME, MISSING_STATUS)),
        "regressions": sum(1 for m in metrics if m["regression"]),
        "subset_regressions": sum(1 for s in subsets if s["regression"]),
        "golden_samples": len(golden_samples),
        "golden_samples_changed": sum(1 for row in golden_samples if row["changed"]),
    }


CHANGE_COUNTS = (
    "config_changes",
    "figure_changes",
    "changelog_entries",
    "metrics_changed",
    "regressions",
    "subset_regressions",
    "golden_samples_changed",
)


def is_empty(summary: Mapping[str, int]) -> bool:
    return all(summary[key] == 0 for key in CHANGE_COUNTS)


def chart_rows(evals: list[dict[str, Any]], *, limit: int = 40) -> list[dict[str, Any]]:
    """Metric-level gains for the chart (positive = better), the largest changes first."""
    rows = []
    for suite in evals:
        for metric in suite["metrics"]:
            if metric["delta"] is None:
                continue
            gain = -metric["delta"] if metric["lower_is_better"] else metric["delta"]
            rows.append(
                {
                    "label": f"{suite['suite']} · {metric['metric']}",
                    "gain": gain,
                    "delta": metric["delta"],
                    "status": metric["status"],
                }
            )
    rows.sort(key=lambda r: (-abs(r["gain"]), r["label"]))
    return rows[:limit]

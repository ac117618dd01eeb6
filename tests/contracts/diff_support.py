"""Builders of eval suites, results and golden samples for the diff and eval tests."""

from __future__ import annotations

from contracts.evals import services as evals
from contracts.models import EvalResult, EvalSuite, GoldenSample, Organization, Snapshot


def make_suite(
    slug: str,
    *,
    owner: Organization | None = None,
    tolerances: dict | None = None,
    lower_is_better: list[str] | None = None,
) -> EvalSuite:
    return EvalSuite.objects.create(
        slug=slug,
        name=slug.replace("-", " ").title(),
        owner=owner,
        tolerances=tolerances if tolerances is not None else {"accuracy": 0.02},
        lower_is_better=lower_is_better or [],
    )


def scores(**metrics: float | tuple[float, dict[str, float]]) -> dict:
    out = {}
    for metric, value in metrics.items():
        score, subsets = value if isinstance(value, tuple) else (value, {})
        out[metric] = {"score": score, "subsets": subsets}
    return out


def make_result(suite: EvalSuite, snapshot: Snapshot, **metrics) -> EvalResult:
    return evals.eval_result_upload(suite=suite.slug, snapshot=snapshot.name, scores=scores(**metrics))


def make_samples(snapshot: Snapshot, outputs: dict[str, str]) -> list[GoldenSample]:
    return evals.golden_samples_upload(
        snapshot=snapshot,
        samples=[
            {"prompt_id": pid, "prompt": f"prompt {pid}", "output": out} for pid, out in outputs.items()
        ],
    )


def big_diff_data(
    a: Snapshot, b: Snapshot, *, suites: int = 50, metrics: int = 20, subsets: int = 10, samples: int = 200
) -> None:
    """The benchmark's shape: suites x metrics x subsets on both snapshots, and golden samples."""
    specs = [
        EvalSuite(
            slug=f"suite-{s:03d}",
            name=f"Suite {s}",
            tolerances={f"m{m:02d}": 0.01 for m in range(metrics)},
            lower_is_better=["m00"],
        )
        for s in range(suites)
    ]
    EvalSuite.objects.bulk_create(specs)
    results = []
    for suite in EvalSuite.objects.filter(slug__startswith="suite-"):
        for offset, snapshot in ((0.0, a), (0.015, b)):
            results.append(
                EvalResult(
                    suite=suite,
                    snapshot=snapshot,
                    scores={
                        f"m{m:02d}": {
                            "score": 0.5 + m / 100 + offset * (1 if m % 3 else -1),
                            "subsets": {
                                f"s{k}": 0.4 + k / 50 + offset * (1 if k % 2 else -1) for k in range(subsets)
                            },
                        }
                        for m in range(metrics)
                    },
                )
            )
    EvalResult.objects.bulk_create(results)
    words = [
        "the",
        "model",
        "answers",
        "the",
        "question",
        "with",
        "care",
        "and",
        "cites",
        "its",
        "sources",
        "when",
        "it",
        "can",
    ]
    rows = []
    for i in range(samples):
        text = " ".join(words[(i + j) % len(words)] for j in range(60))
        rows.append(GoldenSample(snapshot=a, prompt_id=f"p{i:04d}", prompt=f"prompt {i}", output=text))
        changed = text.replace("care", "great care") if i % 2 else text
        rows.append(GoldenSample(snapshot=b, prompt_id=f"p{i:04d}", prompt=f"prompt {i}", output=changed))
    GoldenSample.objects.bulk_create(rows)

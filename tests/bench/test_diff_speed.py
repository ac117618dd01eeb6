"""Benchmark: a diff of 50 suites x 20 metrics x 10 subsets and 200 golden samples.

Prints the server time of the JSON diff (build + render, and the whole API request through the test
client), its query count, and the PDF rendering time (large and demo-sized). Figures are printed, not
asserted; the query bound is asserted in tests/contracts/test_diff_api.py.
Run: .venv/bin/python -m pytest tests/bench/test_diff_speed.py -s
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.diffs.render import render_json, render_pdf
from contracts.diffs.selectors import diff_build
from tests.contracts.diff_support import big_diff_data, make_result, make_samples, make_suite

pytestmark = pytest.mark.django_db

RUNS = 7


def timed(fn, runs: int = RUNS) -> tuple[list[float], object]:
    times, value = [], None
    for _ in range(runs):
        start = time.perf_counter()
        value = fn()
        times.append((time.perf_counter() - start) * 1000)
    return times, value


def report(label: str, times: list[float]) -> None:
    print(
        f"{label}: median {statistics.median(times):.0f} ms, min {min(times):.0f} ms, max {max(times):.0f} ms"
    )


def test_large_diff_json_time(world, api):
    big_diff_data(world.old, world.current, suites=50, metrics=20, subsets=10, samples=200)
    url = f"/api/v1/diffs/{world.old.name}...{world.current.name}/?format=json"
    api.get(url, key=world.key)

    build_times, document = timed(lambda: diff_build(org=world.org, a=world.old.name, b=world.current.name))
    json_times, payload = timed(lambda: render_json(document))
    request_times, response = timed(lambda: api.get(url, key=world.key))
    with CaptureQueriesContext(connection) as queries:
        api.get(url, key=world.key)
    assert response.status_code == 200

    print()
    print(
        f"diff: {document['summary']['suites']} suites, {document['summary']['metrics_compared']} metrics, "
        f"{sum(len(m['subsets']) for s in document['evals'] for m in s['metrics'])} subset rows, "
        f"{document['summary']['golden_samples']} golden samples; JSON {len(payload) / 1e6:.1f} MB"
    )
    report("build (queries + compute)", build_times)
    report("render JSON", json_times)
    report("GET /api/v1/diffs/…?format=json (test client, whole request)", request_times)
    print(f"queries per JSON request: {len(queries)}")


def test_large_diff_pdf_time(world):
    big_diff_data(world.old, world.current, suites=50, metrics=20, subsets=10, samples=200)
    document = diff_build(org=world.org, a=world.old.name, b=world.current.name)
    start = time.perf_counter()
    pdf = render_pdf(document)
    print()
    print(f"PDF of the large diff: {time.perf_counter() - start:.1f} s, {len(pdf) / 1e6:.1f} MB")


def test_demo_sized_diff_pdf_time(world):
    suite = make_suite("qa", tolerances={"accuracy": 0.02, "f1": 0.02})
    for snap, delta in ((world.old, 0.0), (world.current, -0.03)):
        make_result(suite, snap, accuracy=(0.8 + delta, {"a": 0.7, "b": 0.9 + delta}), f1=0.7 - delta)
        make_samples(snap, {f"p{i}": f"answer {i} with {delta}" for i in range(5)})
    document = diff_build(org=world.org, a=world.old.name, b=world.current.name)
    render_pdf(document)  # warm up fonts
    times, _ = timed(lambda: render_pdf(document), runs=3)
    print()
    report("PDF of a demo-sized diff", times)

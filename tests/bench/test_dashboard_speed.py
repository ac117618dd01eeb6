"""Server time of the dashboard for 5, 50 and 500 pins (printed, not asserted: `make bench`).

Run: .venv/bin/python -m pytest tests/bench/test_dashboard_speed.py -s
"""

from __future__ import annotations

import statistics
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories as f
from tests.portal.test_dashboard import make_pins

pytestmark = pytest.mark.django_db

RUNS = 15


def test_dashboard_server_time_for_5_50_500_pins(client):
    user = f.UserFactory(username="bench")
    sizes = (5, 50, 500)
    for size in sizes:
        org = f.OrganizationFactory(slug=f"bench-{size}")
        f.MembershipFactory(user=user, organization=org)
        make_pins(org, size, prefix=f"b{size}")
    client.force_login(user)
    baseline = None
    print()
    print(f"{'pins':>5} {'median ms':>10} {'p90 ms':>8} {'queries':>8} {'x vs 5':>7}")
    for size in sizes:
        url = f"/o/bench-{size}/"
        client.get(url)  # warm-up
        timings = []
        for _ in range(RUNS):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200
        with CaptureQueriesContext(connection) as queries:
            client.get(url)
        median = statistics.median(timings)
        p90 = sorted(timings)[int(RUNS * 0.9) - 1]
        baseline = baseline or median
        print(f"{size:>5} {median:>10.1f} {p90:>8.1f} {len(queries):>8} {median / baseline:>7.1f}")

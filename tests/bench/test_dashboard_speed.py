"""Server time of the dashboard and the other list pages for 5 and 5,000 rows (printed, not
asserted: `make bench`). Target: 5,000 at most 2x the time of 5, with the same number of queries.

Run: .venv/bin/python -m pytest tests/bench/test_dashboard_speed.py -s
"""

from __future__ import annotations

import os
import statistics
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from contracts.models import Role
from tests import factories as f
from tests.portal.test_page_scale import fill

pytestmark = pytest.mark.django_db

RUNS = int(os.environ.get("BENCH_RUNS", 15))
LARGE = int(os.environ.get("BENCH_ROWS", 5000))
PAGES = ["/o/{org}/", "/o/{org}/changelog/", "/o/{org}/consents/", "/o/{org}/notifications/"]
PAGES += ["/o/{org}/bugs/", "/o/{org}/migrations/"]
PAGES += ["/api/v1/bug-reports/?org={org}&limit=25"]  # the API list, a page of the same size


def measure(client, url) -> tuple[float, float, int]:
    client.get(url)  # warm-up
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return statistics.median(timings), sorted(timings)[int(RUNS * 0.9) - 1], len(queries)


def test_list_pages_server_time_for_5_and_5000_rows(client):
    user = f.UserFactory(username="bench")
    for slug, size in (("bench-5", 5), (f"bench-{LARGE}", LARGE)):
        org = f.OrganizationFactory(slug=slug)
        f.MembershipFactory(user=user, organization=org, role=Role.ADMIN)
        fill(org, size, prefix=slug)
    client.force_login(user)
    print(f"\n{'page':40s} {'rows':>5} {'median ms':>10} {'p90 ms':>8} {'queries':>8} {'x vs 5':>7}")
    for page in PAGES:
        base = None
        for size in (5, LARGE):
            median, p90, queries = measure(client, page.format(org=f"bench-{size}"))
            base = base or median
            print(f"{page:40s} {size:>5} {median:>10.1f} {p90:>8.1f} {queries:>8} {median / base:>7.2f}")

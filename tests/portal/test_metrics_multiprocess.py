"""Under gunicorn with several workers, /metrics counts the requests of every worker, including
workers already replaced, whichever worker answers the scrape (prometheus-client multiprocess
mode, PROMETHEUS_MULTIPROC_DIR, portal/gunicorn_config.py)."""

from __future__ import annotations

import os
import urllib.request

import pytest
from django.db import connection

from tests.portal.test_operations import metric
from tests.processes import PortalServer


def sqlite_or_postgres_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return (
        f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )


@pytest.mark.django_db(transaction=True)
def test_request_counts_of_every_gunicorn_worker_are_merged(tmp_path):
    folder = tmp_path / "prometheus"
    (folder).mkdir()
    (folder / "counter_999999.db").write_bytes(b"stale file of a previous run")  # emptied on start
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "CELERY_BROKER_URL"}},
        "DATABASE_URL": sqlite_or_postgres_url(),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "LOG_LEVEL": "WARNING",
    }
    # Each worker is replaced after 10 requests: 30 requests are answered by at least three processes,
    # and the counts of the retired ones still count.
    server = PortalServer(
        env, tmp_path / "gunicorn.log", "--workers", "2", "--worker-class", "sync", "--max-requests", "10"
    )
    server.start()
    try:
        for _ in range(30):
            with urllib.request.urlopen(server.url + "/healthz", timeout=30) as response:
                assert response.status == 200
        with urllib.request.urlopen(server.url + "/metrics", timeout=30) as response:
            text = response.read().decode()
    finally:
        server.stop()
    count = metric(
        text, "django_http_requests_latency_seconds_by_view_method_count", view="healthz", method="GET"
    )
    assert count == 30, server.logs()
    assert metric(text, "vcp_product_metrics_up") == 1
    pids = {p.name.rsplit("_", 1)[-1] for p in folder.glob("*.db")}
    assert len(pids) >= 3 and "999999" not in pids

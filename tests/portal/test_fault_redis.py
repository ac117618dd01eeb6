"""Redis stops while the portal serves: pages and resolve keep answering from the database
(degraded: readiness says so), a decision taken meanwhile is recorded once and served at once, and
everything recovers when Redis returns. The Redis is the test's own process, never the shared one.
"""

from __future__ import annotations

import shutil

import pytest

from contracts.ledger.verify import ledger_verify
from contracts.models import ConsentRecord, LedgerAction
from contracts.pins import hotpath
from tests.contracts.ledger_helpers import propose
from tests.portal.test_operations import metric
from tests.processes import RedisServer

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server (CI services run)"),
]

PAGES = ["/o/acme/", "/o/acme/migrations/", "/o/acme/timeline/", "/o/acme/consents/", "/o/acme/changelog/"]


@pytest.fixture
def redis_cache(settings, tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    options = {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}
    settings.CACHES = {
        "default": {
            "BACKEND": "contracts.cache.ReusedClientRedisCache",
            "LOCATION": server.url,
            "OPTIONS": options,
        },
        "throttle": {
            "BACKEND": "contracts.cache.ReusedClientRedisCache",
            "LOCATION": server.url,
            "KEY_PREFIX": "throttle",
            "OPTIONS": options,
        },
    }
    hotpath.forget()
    try:
        yield server
    finally:
        server.stop()
        hotpath.forget()


def test_pages_and_resolve_answer_from_the_database_while_redis_is_away_and_recover(
    client, world, redis_cache, django_capture_on_commit_callbacks
):
    client.force_login(world.admin)
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {world.key}"}

    def resolve() -> str:
        response = client.get("/api/v1/resolve/v1-chat/", **bearer)
        assert response.status_code == 200, response.content
        return response.json()["snapshot"]["id"]

    migration = propose(world)
    for page in PAGES:
        assert client.get(page).status_code == 200, page
    assert resolve() == resolve() == world.old.name  # the second from the warm path
    assert client.get("/readyz").status_code == 200
    records_before = ConsentRecord.objects.filter(organization=world.org).count()

    redis_cache.stop()
    for page in PAGES:
        assert client.get(page).status_code == 200, page
    assert resolve() == world.old.name
    ready = client.get("/readyz")  # degraded, still in service: the database is what it needs
    assert ready.status_code == 200 and ready.json()["checks"]["cache"]["status"] == "degraded"
    assert ready.json()["checks"]["database"]["status"] == "ok"
    # A decision during the outage: recorded once, and resolve serves it at once (no stale copy).
    with django_capture_on_commit_callbacks(execute=True):
        decided = client.post(
            f"/api/v1/migrations/{migration.pk}/consent/", data={}, content_type="application/json", **bearer
        )
    assert decided.status_code == 200, decided.content
    assert resolve() == world.current.name
    assert client.get("/o/acme/migrations/").status_code == 200

    redis_cache.start()
    for page in PAGES:
        assert client.get(page).status_code == 200, page
    assert resolve() == resolve() == world.current.name
    assert client.get("/readyz").json()["checks"]["cache"]["status"] == "ok"
    consents = ConsentRecord.objects.filter(
        organization=world.org, migration=migration, action=LedgerAction.CONSENT
    )
    assert consents.count() == 1
    assert ConsentRecord.objects.filter(organization=world.org).count() == records_before + 1
    assert ledger_verify(org=world.org).intact
    text = client.get("/metrics").content.decode()
    assert metric(text, "vcp_cache_errors_total", operation="get") >= 1

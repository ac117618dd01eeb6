"""PostgreSQL restarts between and during consent decisions, under a real gunicorn: no decision is
half-recorded, the chain verifies, and the client sees a success or a 503 envelope, never a
silent loss. The cluster is the test's own (tests/contracts/conftest.py), never the shared one.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import psycopg
import pytest

from tests.conftest import requires_postgres
from tests.processes import PortalServer, manage

pytestmark = [pytest.mark.postgres, requires_postgres]


def call(server: PortalServer, method: str, path: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        server.url + path,
        method=method,
        data=b"{}" if method == "POST" else None,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        body = error.read()
        assert error.headers.get_content_type() == "application/json", body[:300]
        return error.code, json.loads(body)


@pytest.fixture
def portal(seeded_cluster, tmp_path):
    server = PortalServer(seeded_cluster.env(), tmp_path / "gunicorn.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def open_migrations(cluster, org: str) -> list[int]:
    rows = cluster.pg.sql(
        "SELECT m.id FROM contracts_migration m JOIN contracts_organization o ON o.id = m.organization_id "
        f"WHERE o.slug = '{org}' AND m.state IN ('proposed', 'deferred') ORDER BY m.id",
        "portal",
    )
    return [int(x) for x in rows.split()]


def ledger_of(cluster, migration_id: int) -> tuple[str, int]:
    state = cluster.pg.sql(f"SELECT state FROM contracts_migration WHERE id = {migration_id}", "portal")
    consents = cluster.pg.sql(
        f"SELECT count(*) FROM contracts_consentrecord WHERE migration_id = {migration_id} AND action = 'consent'",
        "portal",
    )
    return state, int(consents)


def assert_chains_verify(cluster) -> None:
    result = manage("verify_ledger", env=cluster.env(), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def wait_for_lock_waiter(conn: psycopg.Connection, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        if waiting:
            return
        time.sleep(0.05)
    pytest.fail("the consent request never reached the ledger head lock")


def test_a_restart_between_decisions_loses_nothing_and_the_next_decision_reconnects(seeded_cluster, portal):
    key = seeded_cluster.api_keys["acme"]
    first, *_ = open_migrations(seeded_cluster, "acme")  # the other test takes the last one
    assert call(portal, "POST", f"/api/v1/migrations/{first}/consent/", key)[0] == 200
    seeded_cluster.pg.restart()
    # The gunicorn worker's persistent connection died with the server: the next request reconnects.
    status, body = call(portal, "GET", "/api/v1/migrations/", key)
    assert status == 200, body
    assert ledger_of(seeded_cluster, first) == ("applied", 1)
    # Down: every answer is the 503 envelope, nothing is half-done; up again: served.
    seeded_cluster.pg.stop()
    try:
        status, body = call(portal, "GET", "/api/v1/pins/", key)
        assert status == 503 and body["error"]["code"] == "unavailable"
    finally:
        seeded_cluster.pg.start()
    assert call(portal, "GET", "/api/v1/pins/", key)[0] == 200
    assert ledger_of(seeded_cluster, first) == ("applied", 1)
    assert_chains_verify(seeded_cluster)


def test_a_restart_during_a_decision_rolls_it_back_whole_and_the_retry_records_it_once(
    seeded_cluster, portal
):
    key = seeded_cluster.api_keys["acme"]
    *_, migration = open_migrations(seeded_cluster, "acme")
    state_before, _ = ledger_of(seeded_cluster, migration)
    before_records = int(seeded_cluster.pg.sql("SELECT count(*) FROM contracts_consentrecord", "portal"))
    # Hold acme's ledger head: the decision gets as far as its ledger append and waits there, with
    # the migration and pin already changed in its open transaction.
    blocker = psycopg.connect(seeded_cluster.pg.url("portal"), autocommit=False)
    watcher = psycopg.connect(seeded_cluster.pg.url("portal"), autocommit=True)
    blocker.execute(
        "SELECT 1 FROM contracts_ledgerhead h JOIN contracts_organization o ON o.id = h.organization_id "
        "WHERE o.slug = 'acme' FOR UPDATE OF h"
    )
    answer: dict = {}
    request = threading.Thread(
        target=lambda: answer.update(
            result=call(portal, "POST", f"/api/v1/migrations/{migration}/consent/", key)
        )
    )
    request.start()
    try:
        wait_for_lock_waiter(watcher)
        seeded_cluster.pg.restart()  # every session is terminated mid-transaction
    finally:
        request.join(timeout=60)
        for conn in (blocker, watcher):
            conn.close()
    status, body = answer["result"]
    assert status == 503 and body["error"]["code"] == "unavailable", body
    # Nothing of the interrupted decision remains: state, pin and ledger as before.
    assert ledger_of(seeded_cluster, migration) == (state_before, 0)
    assert (
        int(seeded_cluster.pg.sql("SELECT count(*) FROM contracts_consentrecord", "portal")) == before_records
    )
    # The client retries: recorded once; a second retry is refused as a conflict, not recorded again.
    status, body = call(portal, "POST", f"/api/v1/migrations/{migration}/consent/", key)
    assert status == 200, body
    assert call(portal, "POST", f"/api/v1/migrations/{migration}/consent/", key)[0] == 409
    assert ledger_of(seeded_cluster, migration) == ("applied", 1)
    assert (
        int(seeded_cluster.pg.sql("SELECT count(*) FROM contracts_consentrecord", "portal"))
        == before_records + 1
    )
    assert_chains_verify(seeded_cluster)

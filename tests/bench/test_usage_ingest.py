"""Benchmark: usage ingestion of 1,000,000 hourly rollup rows on PostgreSQL beside a raw COPY of the
same rows, side by side in one run, and the replay of every batch (idempotent: nothing counts twice).

The ingestion goes through `usage_ingest` in batches of 5,000 rows (what vcp_gateway sends): name
lookups and checks of every row, the batch record, COPY into a temporary table, INSERT … ON CONFLICT
DO UPDATE into the rollups. The anchor is one COPY of the same rows, already as ids, straight into
the empty rollup table (same indexes and foreign keys), which is then emptied again. Target: ingestion >= 0.3x the anchor's rows per second.
Run: `DATABASE_URL=postgres://… .venv/bin/python -m pytest tests/bench/test_usage_ingest.py -s -p no:cacheprovider`
"""

from __future__ import annotations

import datetime as dt
import io
import os
import time

import pytest
from django.db import connection
from django.utils import timezone

from contracts.gateway import services
from contracts.models import Alias, Organization, Snapshot, UsageHour
from tests import factories as f

ROWS = int(os.environ.get("BENCH_USAGE_ROWS", "1000000"))
BATCH = 5_000
ORGS, ALIASES = 1_000, 5

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("DATABASE_URL", "").startswith("postgres"),
        reason="COPY is measured on PostgreSQL: set DATABASE_URL=postgres://…",
    ),
]


def test_ingest_a_million_rollup_rows_beside_raw_copy():
    family = f.FamilyFactory(slug="chat")
    snapshot = f.SnapshotFactory(family=family, name="chat-a")
    aliases = [f.make_alias(name=f"alias-{n}", target=snapshot) for n in range(ALIASES)]
    Organization.objects.bulk_create(
        [Organization(slug=f"org-{n:04d}", name=f"Org {n}") for n in range(ORGS)]
    )
    orgs = dict(Organization.objects.values_list("slug", "id"))
    hours_needed = ROWS // (ORGS * ALIASES)
    first = timezone.now().replace(minute=0, second=0, microsecond=0) - dt.timedelta(hours=hours_needed)
    hours = [first + dt.timedelta(hours=h) for h in range(hours_needed)]
    rows = [
        {
            "org": org,
            "alias": alias.name,
            "snapshot": "chat-a",
            "hour": hour.strftime("%Y-%m-%dT%H:00:00Z"),
            "requests": 7,
        }
        for hour in hours
        for org in orgs
        for alias in aliases
    ]
    gateway, _ = f.make_gateway("bench")

    # Anchor: one raw COPY of the same rows (as ids) into an empty table with the same unique index.
    alias_ids = {a.name: a.pk for a in Alias.objects.all()}
    snapshot_id = Snapshot.objects.get(name="chat-a").pk
    text = io.StringIO()
    for row in rows:
        text.write(
            f"{orgs[row['org']]}\t{alias_ids[row['alias']]}\t{snapshot_id}\t{row['hour']}\t{row['requests']}\n"
        )
    payload = text.getvalue()
    with connection.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(
            "COPY contracts_usagehour (organization_id, alias_id, snapshot_id, hour, requests) FROM STDIN"
        ) as copy:
            copy.write(payload)
        copy_seconds = time.perf_counter() - started
        cursor.execute("TRUNCATE contracts_usagehour")

    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        result = services.usage_ingest(
            gateway=gateway, batch_id=f"b{start}", rows=rows[start : start + BATCH]
        )
        assert not result.duplicate
    ingest_seconds = time.perf_counter() - started
    total = UsageHour.objects.count()

    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        assert services.usage_ingest(
            gateway=gateway, batch_id=f"b{start}", rows=rows[start : start + BATCH]
        ).duplicate
    replay_seconds = time.perf_counter() - started
    requests = sum(UsageHour.objects.values_list("requests", flat=True).iterator(chunk_size=100_000))

    print(f"\nusage ingestion of {len(rows):,} rollup rows on PostgreSQL, batches of {BATCH:,}")
    print(
        f"  anchor: raw COPY of the same rows       {copy_seconds:7.2f} s   {len(rows) / copy_seconds:10,.0f} rows/s"
    )
    print(
        f"  usage_ingest (checks, COPY, upsert)     {ingest_seconds:7.2f} s   {len(rows) / ingest_seconds:10,.0f} rows/s"
    )
    print(f"  ratio ingest / raw COPY: {copy_seconds / ingest_seconds:.2f}x (target >= 0.3x)")
    print(
        f"  replay of every batch: {replay_seconds:.2f} s, all answered duplicate; rows {total:,}, requests {requests:,} (unchanged)"
    )
    assert total == len(rows) and requests == 7 * len(rows)

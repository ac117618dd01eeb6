"""Benchmark: the pin map at 10,000 organisations x 5 pins, in process, side by side in one run.

Prints the cold build of the full map (the four queries plus encoding) beside the anchor of reading
the same pin rows with one bare query, the size of the answer, the cached answer, and the size of the
delta after one pin change. Targets (docs/data-plane.md): full map < 1 s and < 10 MB, delta < 2 KB.
Run: `.venv/bin/python -m pytest tests/bench/test_pin_map_scale.py -s -p no:cacheprovider`
(BENCH_ORGS to change the size).
"""

from __future__ import annotations

import os
import time

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from contracts.gateway import changelog, selectors
from contracts.models import Alias, Organization, Pin, Snapshot, UpgradePolicy
from contracts.pins import services as pin_services
from tests import factories as f

ORGS = int(os.environ.get("BENCH_ORGS", "10000"))
ALIASES = 5
pytestmark = pytest.mark.django_db


def _build_world() -> list[Alias]:
    family = f.FamilyFactory(slug="chat")
    snapshots = [
        f.SnapshotFactory(family=family, name=f"chat-2025-{n + 1:02d}-01", released_at=f.days(-300 + n * 30))
        for n in range(6)
    ]
    Snapshot.objects.filter(pk=snapshots[0].pk).update(deprecated_at=f.days(-20), retires_at=f.days(60))
    aliases = [f.make_alias(name=f"alias-{n}", target=snapshots[-1]) for n in range(ALIASES)]
    Organization.objects.bulk_create(
        [Organization(slug=f"org-{n:05d}", name=f"Organisation {n}") for n in range(ORGS)], batch_size=2000
    )
    orgs = list(Organization.objects.filter(slug__startswith="org-").values_list("id", flat=True))
    policies = list(UpgradePolicy.values)
    Pin.objects.bulk_create(
        [
            Pin(
                organization_id=org_id,
                alias=alias,
                snapshot=snapshots[(org_id + a) % 6],
                policy=policies[org_id % 3],
            )
            for org_id in orgs
            for a, alias in enumerate(aliases)
        ],
        batch_size=5000,
    )
    return aliases


def test_full_map_and_delta_at_scale():
    aliases = _build_world()
    revision = changelog.pin_map_revision()

    started = time.perf_counter()
    rows = list(Pin.objects.values_list("organization__slug", "alias__name", "snapshot__name", "policy"))
    anchor = time.perf_counter() - started

    selectors.pin_map_forget()
    cache.clear()
    reverse("api:snapshot-detail", kwargs={"snapshot_id": "x"})  # a running portal has its URLconf loaded
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        answer = selectors.pin_map_full(revision=revision)
        cold = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(100):
        selectors.pin_map_full(revision=revision)
    warm = (time.perf_counter() - started) / 100

    org = Organization.objects.get(slug="org-00042")
    pin = Pin.objects.get(organization=org, alias=aliases[0])
    other = Snapshot.objects.exclude(pk=pin.snapshot_id).filter(family=pin.snapshot.family).first()
    pin_services.pin_set(org=org, alias=aliases[0], snapshot=other)
    delta = selectors.pin_map_delta(since=revision, revision=changelog.pin_map_revision())

    megabytes = len(answer.body) / 1e6
    print(f"\npin map at {ORGS} organisations x {ALIASES} pins ({len(rows)} pins), {connection.vendor}")
    print(f"  anchor: one bare query reading the pin rows     {anchor * 1000:8.1f} ms")
    print(
        f"  full map, cold build ({len(queries)} queries) + encode  {cold * 1000:8.1f} ms   target < 1000 ms   ({cold / anchor:.1f}x the anchor)"
    )
    print(f"  full map, cached for its revision               {warm * 1e6:8.1f} us")
    print(f"  full map size                                   {megabytes:8.2f} MB   target < 10 MB")
    print(f"  delta after one pin change                      {len(delta.body):8d} B    target < 2048 B")
    assert len(rows) == ORGS * ALIASES and len(queries) <= 6

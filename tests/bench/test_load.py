"""Load test: the production server configuration (gunicorn + a Celery worker, PostgreSQL + Redis)
under a mixed load from locust (headless, fixed users and duration): customer admins browsing,
API clients listing and deciding migrations, resolve traffic, consent exports. Prints req/s and
p50/p95/p99 per endpoint beside anchors measured in the same run (the plain Django view under the
same users, a raw COPY of the same ledger, no-op Celery tasks), then asserts no failed request and
no lost or duplicated ledger record.

Five minutes at the machine's capacity (the figures of docs/benchmarks.md):
  DATABASE_URL=postgres://postgres@127.0.0.1:5432/h17 REDIS_URL=redis://127.0.0.1:6379/10 \\
  CELERY_BROKER_URL=redis://127.0.0.1:6379/11 .venv/bin/python -m pytest tests/bench/test_load.py -s
CI-sized (about a minute): the same with LOAD_SECONDS=20 LOAD_USERS=8 LOAD_ANCHOR_SECONDS=10.
Like every benchmark it lives under tests/bench, outside `make test`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from contracts.models import ConsentRecord, Migration, MigrationState, Organization, Pin, Snapshot
from tests.conftest import requires_postgres
from tests.notifications.conftest import free_port
from tests.notifications.test_worker_redis import database_url, queue_idle, wait_until
from tests.portal.test_dashboard import make_pins

pytestmark = [
    requires_postgres,
    pytest.mark.skipif(
        not os.environ.get("CELERY_BROKER_URL", "").startswith("redis") or not os.environ.get("REDIS_URL"),
        reason="needs Redis: REDIS_URL and CELERY_BROKER_URL=redis://…",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
SECONDS = int(os.environ.get("LOAD_SECONDS", 300))
USERS = int(os.environ.get("LOAD_USERS", 40))
ANCHOR_SECONDS = int(os.environ.get("LOAD_ANCHOR_SECONDS", 30))
PINS = int(os.environ.get("LOAD_PINS", 2000))
WEB_WORKERS = os.environ.get("LOAD_WEB_WORKERS", "4")  # README's production line: gunicorn -w 4
NOOP_TASKS = 2000


def seed(tmp: Path) -> dict:
    """The demo data, plus a large organisation: PINS pins, half of them with an open migration."""
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    lines = out.getvalue().splitlines()
    keys = {line.split()[2].split("=")[1]: line.split()[1] for line in lines if line.startswith("api-key:")}
    logins = [
        line.split()[1:4]
        for line in lines
        if line.startswith("login:") and "role=admin" in line and "org=-" not in line
    ]
    # The suite hashes passwords with MD5 for speed; the server verifies with production's hashers.
    for username, password, _ in logins:
        hashed = PBKDF2PasswordHasher().encode(password, PBKDF2PasswordHasher().salt())
        get_user_model().objects.filter(username=username).update(password=hashed)
    slug = next(iter(keys))
    org = Organization.objects.get(slug=slug)
    make_pins(org, PINS, prefix="load")
    targets = {s.family_id: s for s in Snapshot.objects.filter(name__startswith="load-snap-2")}
    open_pins = Pin.objects.filter(organization=org, alias__name__startswith="load-").exclude(
        migrations__state__in=["proposed", "consented", "deferred"]
    )
    now = timezone.now()
    created = Migration.objects.bulk_create(
        Migration(
            organization=org,
            pin=pin,
            from_snapshot=pin.snapshot,
            to_snapshot=targets[pin.snapshot.family_id],
            state=MigrationState.PROPOSED,
            proposed_at=now,
            deadline=now + dt.timedelta(days=60),
        )
        for pin in open_pins.select_related("snapshot")[: PINS // 2]
        if pin.snapshot_id != targets[pin.snapshot.family_id].pk
    )
    (tmp / "logins").write_text("\n".join(" ".join([*login[:2], login[2].split("=")[1]]) for login in logins))
    (tmp / "keys").write_text("\n".join(f"{key} {org_slug}" for org_slug, key in keys.items()))
    (tmp / "decisions").write_text("\n".join(f"{m.pk} {keys[slug]}" for m in created))
    return {"org": org, "migrations": [m.pk for m in created]}


def run_locust(tmp: Path, port: int, *, name: str, seconds: int, env: dict) -> dict[str, dict]:
    prefix = tmp / name
    subprocess.run(
        [
            str(Path(sys.executable).parent / "locust"),
            "-f",
            str(ROOT / "tests/bench/locustfile.py"),
            "--headless",
            "-u",
            str(USERS),
            "-r",
            str(max(USERS // 5, 1)),
            "-t",
            f"{seconds}s",
            "--host",
            f"http://127.0.0.1:{port}",
            "--csv",
            str(prefix),
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        check=False,
        capture_output=True,
        timeout=seconds + 120,
    )
    with open(f"{prefix}_stats.csv") as handle:
        return {row["Name"]: row for row in csv.DictReader(handle)}


def copy_seconds(org: Organization) -> tuple[float, int]:
    """The raw-COPY anchor: the organisation's ledger as CSV straight from the server."""
    start, size = time.perf_counter(), 0
    sql = (
        "COPY (SELECT * FROM contracts_consentrecord WHERE organization_id = %s ORDER BY seq) "
        "TO STDOUT WITH CSV HEADER"
    )
    with connection.cursor() as cursor, cursor.connection.cursor().copy(sql, [org.pk]) as copy:
        for block in copy:
            size += len(block)
    return time.perf_counter() - start, size


@pytest.mark.django_db(transaction=True)
def test_mixed_load_on_the_production_configuration(bench_workers, tmp_path):
    from notifications.tasks import noop
    from portal.celery import app

    world = seed(tmp_path)
    org = world["org"]
    records_before = ConsentRecord.objects.filter(organization=org).count()
    workers = bench_workers
    workers.start("load", concurrency=2, LOG_LEVEL="WARNING")
    var = tmp_path / "var"
    var.mkdir()
    # The server signs and verifies ledger heads and checkpoints with the keys seeding used.
    keys = Path(getattr(settings, "SIGNING_KEYS_DIR", settings.VAR_DIR / "keys"))
    if keys.exists():
        shutil.copytree(keys, var / "keys")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(var),
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": workers.queue,
        "CONN_MAX_AGE": "600",
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "portal.wsgi", "-b", f"127.0.0.1:{port}",
         "-w", WEB_WORKERS, "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.3)

        # Anchor: no-op tasks through the same worker.
        noop.apply_async(queue=workers.queue)
        wait_until(lambda: queue_idle(workers.queue), timeout=120, what="worker start", workers=workers)
        started = time.perf_counter()
        with app.producer_or_acquire() as producer:
            for _ in range(NOOP_TASKS):
                noop.apply_async(queue=workers.queue, producer=producer)
        wait_until(
            lambda: queue_idle(workers.queue), timeout=600, what="no-op tasks", workers=workers, every=0.05
        )
        noop_rate = NOOP_TASKS / (time.perf_counter() - started)

        # Anchor: the plain Django view under the same users.
        common = {
            "LOAD_LOGINS": str(tmp_path / "logins"),
            "LOAD_KEYS": str(tmp_path / "keys"),
            "LOAD_DECISIONS": str(tmp_path / "decisions"),
            "LOAD_DECIDED": str(tmp_path / "decided"),
        }
        anchor = run_locust(
            tmp_path, port, name="anchor", seconds=ANCHOR_SECONDS, env={**common, "LOAD_ONLY": "healthz"}
        )
        # The mix.
        mix = run_locust(tmp_path, port, name="mix", seconds=SECONDS, env=common)
        wait_until(lambda: queue_idle(workers.queue), timeout=600, what="tasks of the mix", workers=workers)
        # The chain as the server's own signing keys (under its VAR_DIR) see it: exit 1 when broken.
        verified = subprocess.run(
            [sys.executable, "manage.py", "verify_ledger", "--org", org.slug],
            cwd=ROOT, env=env, capture_output=True, text=True,
        )  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)

    copies = sorted(copy_seconds(org)[0] for _ in range(3))
    records = ConsentRecord.objects.filter(organization=org).count()

    print(f"\n[load] gunicorn -w {WEB_WORKERS} (sync) + Celery worker (2 processes), PostgreSQL + Redis; "
          f"locust {USERS} users, {SECONDS} s mix, {ANCHOR_SECONDS} s anchor")  # fmt: skip
    print(f"{'endpoint':44s} {'requests':>9} {'fail':>5} {'req/s':>8} {'p50':>6} {'p95':>6} {'p99':>6} (ms)")
    for name, row in [*anchor.items(), *mix.items()]:
        if name in ("Aggregated",) and row is anchor.get("Aggregated"):
            continue
        print(
            f"{name[:44]:44s} {row['Request Count']:>9} {row['Failure Count']:>5} {float(row['Requests/s']):>8.1f} "
            f"{row['50%']:>6} {row['95%']:>6} {row['99%']:>6}"
        )
    print(f"[load] anchor no-op Celery tasks: {noop_rate:.0f}/s on the same worker")
    print(
        f"[load] anchor raw COPY of the ledger after the run ({records} records): median {copies[1] * 1000:.0f} ms; "
        f"export p50 under load: {mix.get('api: GET consents/export/ csv', {}).get('50%', '-')} ms"
    )

    failures = {
        name: row["Failure Count"] for name, row in {**anchor, **mix}.items() if row["Failure Count"] != "0"
    }
    assert not failures, failures
    decided = (
        [line.split() for line in (tmp_path / "decided").read_text().splitlines()]
        if (tmp_path / "decided").exists()
        else []
    )
    assert decided, "no decision was made during the run"
    ids = [int(migration_id) for migration_id, _ in decided]
    assert len(ids) == len(set(ids))  # no migration decided twice
    # Every acknowledged decision is in the ledger exactly once, and nothing else was added.
    consents = ConsentRecord.objects.filter(organization=org, migration_id__in=ids, action="consent")
    assert sorted(consents.values_list("migration_id", flat=True)) == sorted(ids)
    assert sorted(consents.values_list("seq", flat=True)) == sorted(int(seq) for _, seq in decided)
    # Whatever else the run added is the worker's (applying consented or due migrations), never a
    # decision through the API that no client saw acknowledged; and nothing is there twice.
    added = ConsentRecord.objects.filter(organization=org, seq__gt=records_before)
    unacknowledged = added.exclude(migration_id__in=ids).filter(actor_email__startswith="api-key:")
    assert not unacknowledged.exists(), list(unacknowledged.values("seq", "migration_id", "action"))
    per_action = Counter(added.values_list("migration_id", "action"))
    assert max(per_action.values()) == 1, per_action.most_common(3)
    assert records == records_before + added.count()
    seqs = list(ConsentRecord.objects.filter(organization=org).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no duplicate
    assert verified.returncode == 0, verified.stdout + verified.stderr

"""Benchmark: consent exports at scale on PostgreSQL (1,000,000 ledger records).

Prints, from one run:
- CSV export throughput of the streaming path (exports.export_stream, server-side cursor) beside
  `COPY (SELECT …) TO STDOUT WITH CSV` of the same rows (target: streaming >= 0.5 x COPY);
- peak RSS of the exporting process (a fresh subprocess; target < 150 MB);
- the PDF of 10,000 records (target < 30 s and < 500 MB peak RSS), beside the same PDF with its records
  laid out as before issue #13 (`old_records_html`: one record a 5.4pt line), in the same run.
Rows are inserted with COPY FROM STDIN, bypassing ledger_append but with a valid hash chain.
Run: TEST_DB_NAME=test_exports DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
     .venv/bin/python -m pytest tests/bench/test_export_scale.py -s
Sizes: BENCH_EXPORT_RECORDS (default 1000000), BENCH_PDF_RECORDS (default 10000); the CSV ratio is
the median of BENCH_EXPORT_ROUNDS (default 5) interleaved rounds of COPY and export, the PDF ratio the
median of BENCH_PDF_ROUNDS (default 1) interleaved rounds of the old and the readable layout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.db import connection
from django.utils.html import escape

from contracts.ledger.chain import GENESIS_HASH, compute_hash, head_sign
from contracts.models import LedgerHead, Organization
from tests.conftest import requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
N = int(os.environ.get("BENCH_EXPORT_RECORDS", "1000000"))
N_PDF = int(os.environ.get("BENCH_PDF_RECORDS", "10000"))
ROUNDS = int(os.environ.get("BENCH_EXPORT_ROUNDS", "5"))
PDF_ROUNDS = int(os.environ.get("BENCH_PDF_ROUNDS", "1"))
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
COLUMNS = (
    "organization_id, seq, action, actor_email, migration_id, from_snapshot, to_snapshot, terms_version, "
    "terms_sha256, diff_sha256, details, ip, user_agent, created_at, prev_hash, hash"
)
ACTIONS = ("consent", "defer", "decline", "apply", "accept-terms")


def chain_rows(org: Organization, n: int):
    """Valid chain rows for COPY, hashes computed exactly as ledger_append would."""
    prev = GENESIS_HASH
    terms_sha = "a" * 64
    for seq in range(1, n + 1):
        created = T0 + dt.timedelta(seconds=seq)
        body = {
            "organization": org.slug, "seq": seq, "action": ACTIONS[seq % 5], "actor_email": f"user{seq % 97}@acme.example",
            "migration_id": None, "from_snapshot": "chat-2025-01-01", "to_snapshot": "chat-2025-06-01",
            "terms_version": "1.0", "terms_sha256": terms_sha, "diff_sha256": "", "details": {} if seq % 10 else {"n": seq},
            "ip": "203.0.113.7", "user_agent": "bench/1.0", "created_at": created.isoformat().replace("+00:00", "Z"),
        }  # fmt: skip
        own = compute_hash(body, prev)
        yield (
            org.pk, seq, body["action"], body["actor_email"], None, body["from_snapshot"], body["to_snapshot"],
            "1.0", terms_sha, "", json.dumps(body["details"]), body["ip"], body["user_agent"], created, prev, own,
        )  # fmt: skip
        prev = own


def insert_chain(org: Organization, n: int) -> float:
    start = time.perf_counter()
    last = None
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(f"COPY contracts_consentrecord ({COLUMNS}) FROM STDIN") as copy:
            for row in chain_rows(org, n):
                copy.write_row(row)
                last = row
        cursor.execute("ANALYZE contracts_consentrecord")
    head, _ = LedgerHead.objects.update_or_create(
        organization=org, defaults={"seq": n, "head_hash": last[-1]}
    )
    head_sign(head, org_slug=org.slug)  # the head is a signed statement (contracts.ledger.chain)
    head.save(update_fields=["key_id", "signature"])
    return time.perf_counter() - start


# The anchor of the PDF figure: the records as laid out before issue #13, one record a line of 5.4pt
# monospaced text with the columns padded by spaces, all in one text run. The child swaps it in for
# exports.pdf_records_html; cover, appendix, joining and signing stay the same.
OLD_COLUMNS = (("seq", 7), ("created_at (UTC)", 27), ("action", 20), ("actor", 28), ("mig", 5),
               ("from -> to", 37), ("terms", 6), ("terms sha256", 12), ("ip", 15), ("hash", 64))  # fmt: skip
OLD_STYLE = """<style>
  @page { size: A4 landscape; margin: 12mm 10mm 14mm 10mm;
          @bottom-left { content: "%s · consent history · generated %s"; font-size: 7pt; color: #555; } }
  body { font-family: "DejaVu Sans", sans-serif; font-size: 8pt; color: #111; }
  h2 { font-size: 12pt; margin: 6mm 0 2mm; }
  pre.records { font-family: "DejaVu Sans Mono", monospace; font-size: 5.4pt; line-height: 1.25;
                white-space: pre-wrap; margin: 0; }
</style>"""


def old_records_html(batch: list[tuple], *, context: dict, first: int) -> str:
    lines = []
    for r in batch:
        moved = f"{r[5]} -> {r[6]}" if r[5] or r[6] else ""
        lines.append(
            f"{r[1]:<7} {r[13]:<27} {r[2]:<20} {r[3]:<28} {'' if r[4] is None else r[4]!s:<5} {moved:<37} "
            f"{r[7]:<6} {r[8][:12]:<12} {r[11] or '':<15} {r[15]}"
        )
    org, header = context["org"], " ".join(name.ljust(width) for name, width in OLD_COLUMNS)
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Records</title>'
        f"{OLD_STYLE % (escape(org.name), context['generated_at'])}</head><body>"
        f"<h2>Records {first} to {first + len(batch) - 1} of {context['total']} · {org.slug}</h2>"
        f'<pre class="records"><b>{escape(header)}</b>\n{escape(chr(10).join(lines))}</pre></body></html>'
    )


CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, time
    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from contracts.ledger import exports
    from contracts.models import Organization
    if sys.argv[1] == "pdf-old":
        from tests.bench.test_export_scale import old_records_html
        exports.pdf_records_html = old_records_html
    org = Organization.objects.get(slug=sys.argv[2])
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start, cpu = time.perf_counter(), time.process_time()
    if sys.argv[1] == "csv":
        export = exports.export_create(org=org, fmt="csv", filters=exports.ExportFilters())
        size = sum(len(chunk) for chunk in exports.export_stream(export=export, org=org, filters=exports.ExportFilters()))
    else:
        with open(sys.argv[3], "wb") as out:
            result = exports.pdf_write(out=out, org=org, filters=exports.ExportFilters())
        size = os.path.getsize(sys.argv[3])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "bytes": size, "base_mb": base / 1024, "peak_mb": peak / 1024,
                      "pages": result["pages"] if sys.argv[1] != "csv" else None}))
    """
)


def run_child(*args: str) -> dict:
    env = {**os.environ, "DATABASE_URL": _db_url()}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _db_url() -> str:
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def copy_csv(org: Organization) -> tuple[float, int]:
    start = time.perf_counter()
    size = 0
    sql = (
        f"COPY (SELECT {COLUMNS} FROM contracts_consentrecord WHERE organization_id = {int(org.pk)} "
        "ORDER BY organization_id, seq) TO STDOUT WITH CSV HEADER"
    )
    with connection.cursor() as cursor, cursor.connection.cursor().copy(sql) as copy:
        for block in copy:
            size += len(block)
    return time.perf_counter() - start, size


def test_export_scale(tmp_path):
    big = Organization.objects.create(slug="bench-big", name="Bench Big")
    small = Organization.objects.create(slug="bench-pdf", name="Bench PDF")
    insert_seconds = insert_chain(big, N)
    insert_chain(small, N_PDF)
    print(f"\ninserted {N:,} chained records with COPY in {insert_seconds:.1f} s")

    copy_csv(big)  # warm the cache for both
    copies, streams = [], []
    for _ in range(ROUNDS):  # interleaved, so a burst of load on the machine hits both alike
        copies.append(copy_csv(big))
        streams.append(run_child("csv", big.slug))
    copy_bytes = copies[0][1]
    copy_median = statistics.median(seconds for seconds, _ in copies)
    stream_median = statistics.median(s["seconds"] for s in streams)
    ratios = sorted(
        copy_seconds / stream["seconds"] for (copy_seconds, _), stream in zip(copies, streams, strict=True)
    )
    stream = max(streams, key=lambda s: s["peak_mb"])
    print(
        f"COPY TO STDOUT CSV : {N / copy_median:12,.0f} rows/s  {copy_bytes / copy_median / 1e6:7.1f} MB/s  "
        f"(median of {ROUNDS}: {copy_median:.2f} s)"
    )
    print(
        f"streamed CSV export: {N / stream_median:12,.0f} rows/s  {stream['bytes'] / stream_median / 1e6:7.1f} MB/s"
        f"  (median of {ROUNDS}: {stream_median:.2f} s, {stream['bytes'] / 1e6:.0f} MB)"
    )
    print(
        f"ratio streamed/COPY (rows/s): median {copy_median / stream_median:.2f}, per round "
        f"{', '.join(f'{r:.2f}' for r in ratios)}  (target >= 0.5 in every round)"
    )
    print(
        f"exporting process RSS: {stream['base_mb']:.0f} MB after start-up, peak {stream['peak_mb']:.0f} MB (target < 150)"
    )

    olds, news = [], []
    for _ in range(PDF_ROUNDS):  # interleaved, like the CSV rounds
        olds.append(run_child("pdf-old", small.slug, str(tmp_path / "old.pdf")))
        news.append(run_child("pdf", small.slug, str(tmp_path / "bench.pdf")))
    for label, runs in (("PDF, layout before #13 (anchor)", olds), ("PDF, readable layout (8pt)", news)):
        seconds = [r["seconds"] for r in runs]
        print(
            f"{label}: {N_PDF:,} records in {statistics.median(seconds):.1f} s, CPU "
            f"{statistics.median(r['cpu'] for r in runs):.1f} s (medians of {PDF_ROUNDS}; wall "
            f"{', '.join(f'{t:.1f}' for t in seconds)}), {runs[-1]['pages']} pages, "
            f"{runs[-1]['bytes'] / 1e6:.1f} MB, peak RSS {max(r['peak_mb'] for r in runs):.0f} MB"
        )
    # CPU time as well as wall time: on a shared machine the process's own CPU time moves less.
    for measure in ("seconds", "cpu"):
        pdf_ratios = [new[measure] / old[measure] for old, new in zip(olds, news, strict=True)]
        print(
            f"ratio readable/old layout ({'wall' if measure == 'seconds' else 'CPU'} time): median "
            f"{statistics.median(pdf_ratios):.2f}, per round {', '.join(f'{r:.2f}' for r in pdf_ratios)}"
        )
    print("targets for the readable PDF of 10,000 records: < 30 s on the idle machine, < 500 MB peak RSS")
    assert stream["bytes"] > copy_bytes * 0.5

"""Streamed CSV/NDJSON exports: every field, exact values, filters, the export log, bad input."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import ApplicationError
from contracts.ledger import exports
from contracts.ledger.chain import GENESIS_HASH, compute_hash, record_body
from contracts.ledger.verify_bundle_standalone import cell
from contracts.models import ConsentExport, ConsentRecord, ExportStatus
from tests.conftest import requires_postgres
from tests.contracts.export_helpers import T0, seed_ledger

pytestmark = pytest.mark.django_db


def stream(world, fmt: str, params: dict | None = None, org="default") -> tuple[ConsentExport, bytes]:
    org = world.org if org == "default" else org
    filters = exports.export_filters_parse(params or {})
    export = exports.export_create(org=org, fmt=fmt, filters=filters, requested_by=world.legal)
    data = b"".join(exports.export_stream(export=export, org=org, filters=filters))
    export.refresh_from_db()
    return export, data


def test_csv_has_one_row_per_record_with_every_field_and_hash(world):
    records = seed_ledger(world, n=6)
    _export, data = stream(world, "csv")
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert list(rows[0]) == list(exports.EXPORT_FIELDS)
    assert len(rows) == 6
    for row, record in zip(rows, records, strict=True):
        body = record_body(record)
        assert row == {
            **{k: cell(v) for k, v in body.items()},
            "prev_hash": record.prev_hash,
            "hash": record.hash,
        }
        assert row["terms_sha256"] == record.terms_sha256 != ""
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert rows[3]["terms_version"] == "2.0"
    assert rows[1]["user_agent"] == 'pytest, "quoted"'


def test_ndjson_records_rehash_to_their_own_hash_and_chain(world):
    seed_ledger(world, n=5)
    _export, data = stream(world, "ndjson")
    prev = GENESIS_HASH
    lines = data.decode().splitlines()
    assert len(lines) == 5
    for line in lines:
        record = json.loads(line)
        body = {k: v for k, v in record.items() if k not in ("prev_hash", "hash")}
        assert record["prev_hash"] == prev
        assert compute_hash(body, prev) == record["hash"]
        prev = record["hash"]


def test_every_streamed_export_is_logged_with_who_filters_count_and_file_hash(world):
    seed_ledger(world, n=4)
    export, data = stream(world, "csv", {"action": "consent"})
    assert export.status == ExportStatus.READY
    assert export.requested_by == world.legal
    assert export.filters == {"action": "consent"}
    assert export.record_count == 1
    assert export.file_sha256 == hashlib.sha256(data).hexdigest()


def test_interrupted_stream_is_logged_as_failed(world):
    seed_ledger(world, n=4)
    filters = exports.ExportFilters()
    export = exports.export_create(org=world.org, fmt="ndjson", filters=filters)
    chunks = exports.export_stream(export=export, org=world.org, filters=filters)
    next(chunks)
    chunks.close()
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED
    assert export.file_sha256 == ""


def test_date_range_is_inclusive_and_to_covers_the_whole_day(world):
    seed_ledger(world, n=6)  # one a day from 2025-03-01
    _export, data = stream(world, "ndjson", {"from": "2025-03-02", "to": "2025-03-04"})
    assert [json.loads(line)["seq"] for line in data.decode().splitlines()] == [2, 3, 4]


def test_snapshot_and_terms_filters(world):
    seed_ledger(world, n=6)
    _e, by_snapshot = stream(world, "ndjson", {"snapshot": world.current.name})
    assert [json.loads(x)["seq"] for x in by_snapshot.decode().splitlines()] == [2, 3, 5, 6]
    _e, by_terms = stream(world, "ndjson", {"terms_version": "1.0"})
    assert [json.loads(x)["seq"] for x in by_terms.decode().splitlines()] == [1, 2, 3]


def test_export_of_an_organisation_never_holds_another_organisations_records(world):
    seed_ledger(world, n=3)
    _e, data = stream(world, "ndjson")
    assert {json.loads(x)["organization"] for x in data.decode().splitlines()} == {"acme"}


def test_staff_export_of_every_organisation_orders_by_chain(world):
    seed_ledger(world, n=3)
    _e, data = stream(world, "ndjson", org=None)
    assert [(json.loads(x)["organization"], json.loads(x)["seq"]) for x in data.decode().splitlines()] == [
        ("acme", 1), ("acme", 2), ("acme", 3), ("globex", 1), ("globex", 2),
    ]  # fmt: skip


def test_empty_range_gives_a_header_only_csv_and_an_empty_ndjson(world):
    seed_ledger(world, n=2)
    export, data = stream(world, "csv", {"from": "2031-01-01"})
    assert data.decode().splitlines() == [",".join(exports.EXPORT_FIELDS)]
    assert export.status == ExportStatus.READY and export.record_count == 0
    assert stream(world, "ndjson", {"from": "2031-01-01"})[1] == b""


def test_streaming_reads_in_chunks_with_a_constant_number_of_queries(world, monkeypatch):
    monkeypatch.setattr(exports, "CHUNK", 2)
    seed_ledger(world, n=6)
    with CaptureQueriesContext(connection) as few:
        stream(world, "csv")
    seed_ledger_more = 12
    from contracts.ledger.chain import ledger_append

    for _ in range(seed_ledger_more):
        ledger_append(org=world.org, action="consent")
    with CaptureQueriesContext(connection) as many:
        stream(world, "csv")
    assert len(many) == len(few) <= 9  # 9: the export request's audit entry is one INSERT


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2025-03-05", "to": "2025-03-01"}, "from"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2025-13-45"}, "to"),
        ({"action": "sign"}, "action"),
        ({"snapshot": "x" * 101}, "snapshot"),
        ({"terms_version": "1.0\x00"}, "terms_version"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(params, field):
    with pytest.raises(ApplicationError) as info:
        exports.export_filters_parse(params)
    assert field in info.value.fields


def test_unknown_format_is_refused_naming_the_field():
    with pytest.raises(ApplicationError) as info:
        exports.export_format_parse("xlsx")
    assert "format" in info.value.fields


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
    max_leaves=8,
)


@settings(max_examples=40, deadline=None)
@given(user_agent=text, email=text, details=st.dictionaries(text, json_values, max_size=4))
def test_csv_cells_parse_back_to_the_ndjson_values(user_agent, email, details):
    """Whatever the text (commas, quotes, newlines, unicode), CSV and NDJSON say the same thing."""
    row = ("acme", 1, "consent", email, None, "a", "b", "1.0", "x" * 64, "", details, None, user_agent,
           "2025-01-01T00:00:00Z", GENESIS_HASH, "f" * 64)  # fmt: skip
    data = b"".join(exports.csv_chunks([row])).decode()
    parsed = next(iter(csv.DictReader(io.StringIO(data, newline=""))))
    record = json.loads(b"".join(exports.ndjson_chunks([row])).decode())
    assert parsed == {k: cell(v) for k, v in record.items()}


TRICKY_DETAILS = [
    {},
    [],
    {"only": "one"},
    {"note": 'comma, "quote"\nnew line\r\ncr', "é": "ünï ✓", "n": 7, "x": 0.5, "ok": True, "none": None},
    {"nested": {"b": [1, {"z": "\u0001\t"}], "a": []}, "B": 1, "a": "\\"},
    {"big": 10**20, "neg": -3, "f": 123.25, "e": 1.0},
]
# No fraction, trailing zeros the server drops (.120000 prints as .12), one microsecond, and a full six digits.
TRICKY_MICROSECONDS = [0, 120000, 1, 999999, 10, 500000]


@requires_postgres
def test_postgres_copy_csv_says_exactly_what_the_python_csv_says(world):
    from contracts.ledger.chain import ledger_append

    for i, details in enumerate(TRICKY_DETAILS):
        ledger_append(
            org=world.org, action="consent", details=details, ip="2001:db8::1" if i % 2 else None,
            user_agent='agent "x",\n2' if i == 1 else "", actor_email="", at=T0 + dt.timedelta(microseconds=TRICKY_MICROSECONDS[i]),
        )  # fmt: skip
    filters = exports.ExportFilters()
    assert exports.pg_copy_usable(world.org, filters)
    python_csv = b"".join(
        exports.csv_chunks(
            exports.export_records(exports.export_queryset(org=world.org, filters=filters), org=world.org)
        )
    )
    counter = exports._Counter()
    with transaction.atomic():
        pg_csv = b"".join(exports.pg_csv_chunks(world.org, filters, counter))
    parse = lambda data: list(csv.DictReader(io.StringIO(data.decode(), newline="")))  # noqa: E731
    assert parse(pg_csv) == parse(python_csv)
    assert counter.count == len(TRICKY_DETAILS)


@requires_postgres
def test_postgres_falls_back_to_python_for_numbers_it_would_print_differently(world):
    from contracts.ledger.chain import ledger_append

    ledger_append(org=world.org, action="consent", details={"tiny": 1.5e-7})
    assert not exports.pg_copy_usable(world.org, exports.ExportFilters())
    _export, data = stream(world, "csv")
    row = next(iter(csv.DictReader(io.StringIO(data.decode(), newline=""))))
    assert row["details"] == '{"tiny":1.5e-07}'


@requires_postgres
def test_the_copy_check_remembers_what_it_read_and_still_sees_a_record_appended_later(world):
    from contracts.ledger.chain import ledger_append

    ledger_append(org=world.org, action="consent", details={"n": 1})
    assert exports.pg_copy_usable(world.org, exports.ExportFilters())
    last = ConsentRecord.objects.filter(organization=world.org).order_by("-seq").first().seq
    assert cache.get(exports._copy_safe_key(world.org)) == last  # later checks start after it
    ledger_append(org=world.org, action="consent", details={"tiny": 1.5e-7})
    assert not exports.pg_copy_usable(world.org, exports.ExportFilters())
    # A filter that leaves the risky record out can still use COPY.
    only_first = exports.ExportFilters(
        date_to=ConsentRecord.objects.get(organization=world.org, seq=last).created_at
    )
    assert exports.pg_copy_usable(world.org, only_first)

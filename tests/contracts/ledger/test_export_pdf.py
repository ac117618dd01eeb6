"""The PDF export: cover facts, the records table across chunks, the terms appendix (text via pypdf)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from pypdf import PdfReader

from contracts.ledger import exports
from contracts.ledger.chain import ledger_append
from contracts.models import ConsentRecord, LedgerAction, LedgerHead
from tests.contracts.export_helpers import T0, pdf_runs, seed_ledger

pytestmark = pytest.mark.django_db


def pdf_bytes(world, params=None, *, chunk_size=1000, org="default") -> tuple[bytes, dict]:
    buffer = io.BytesIO()
    result = exports.pdf_write(
        out=buffer, org=world.org if org == "default" else org,
        filters=exports.export_filters_parse(params or {}), chunk_size=chunk_size,
    )  # fmt: skip
    return buffer.getvalue(), result


def pdf_text(world, params=None, *, chunk_size=1000, org="default") -> tuple[list[str], dict]:
    pdf, result = pdf_bytes(world, params, chunk_size=chunk_size, org=org)
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages], result


def words_of(pages: list[str]) -> str:
    """The text with every run of blanks and line ends as one space (wrapping moves line ends)."""
    return " ".join(" ".join(pages).split())


def test_cover_names_organisation_range_count_chain_head_and_verification(world):
    seed_ledger(world, n=6)
    pages, result = pdf_text(world, {"from": "2025-03-02", "to": "2025-03-05"})
    cover = pages[0]
    head = LedgerHead.objects.get(organization=world.org)
    assert "Acme (acme)" in cover
    assert "from 2025-03-02T00:00:00Z to 2025-03-05T23:59:59.999999Z" in cover
    assert "Record count\n4" in cover or "Record count 4" in cover
    assert head.head_hash[:32] in cover.replace("\n", "")
    assert "INTACT" in cover
    assert result["record_count"] == 4


def test_records_table_lists_every_record_across_chunks(world):
    records = seed_ledger(world, n=7)
    pages, result = pdf_text(world, chunk_size=3)
    body = "\n".join(pages[1:-1]).replace("\n", " ")
    assert "Records 1 to 3 of 7" in body and "Records 7 to 7 of 7" in body
    for record in records:
        assert f"hash {record.hash}" in body  # whole, on one line
    assert result["pages"] == len(pages) >= 5


def test_records_read_in_words_with_the_time_to_the_second_and_the_full_hash(world):
    seed_ledger(world, n=1)
    deferral = ledger_append(
        org=world.org,
        action=LedgerAction.DEFER,
        acting_user=world.admin,
        from_snapshot=world.old.name,
        to_snapshot=world.current.name,
        details={"deferred_until": "2025-04-03T00:00:00Z", "limit": "2025-04-30T00:00:00Z"},
        ip="203.0.113.7",
        at=T0 + dt.timedelta(days=2, seconds=5, microseconds=250000),
    )
    pages, _ = pdf_text(world)
    records = words_of(pages[1:-1])
    assert (
        f"#{deferral.seq} 2025-03-03 12:00:05 UTC Deferred a migration by {world.admin.email} ip 203.0.113.7 "
        "Deferred until 3 April 2025, 00:00 UTC (latest allowed 30 April 2025, 00:00 UTC)."
    ) in records
    assert (
        f"{world.old.name} -> {world.current.name} terms {deferral.terms_version} ({deferral.terms_sha256[:12]}...) "
        f"hash {deferral.hash}"
    ) in records
    assert "Accepted contract terms" in records and "First terms accepted." in records
    # The cover says how to read them.
    assert "How to read the records" in pages[0]


def test_every_text_is_at_least_8pt_and_no_record_line_runs_off_the_page(world):
    seed_ledger(world, n=3)
    long_name = "chat-" + "x" * 94  # the longest name a snapshot may have is 100 characters
    longest = ledger_append(
        org=world.org,
        action=LedgerAction.FOLLOW,
        actor_email="a-very-long-mailbox-name." + "y" * 150 + "@example.com",
        from_snapshot=long_name,
        to_snapshot=long_name + "z",
        details={"alias": "v1-chat", "reason": "the alias moved\nbecause " + "of a reason " * 20},
        ip="2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
        at=T0 + dt.timedelta(days=5),
    )
    pdf, _ = pdf_bytes(world)
    runs = pdf_runs(pdf)
    assert runs and min(run.size for run in runs) >= 8, min(runs, key=lambda run: run.size)
    record_pages = {run.page for run in runs if run.text.startswith("Records ")}
    records = [run for run in runs if run.page in record_pages and not run.text.startswith("Records ")]
    assert records and {run.size for run in records} == {8.0}
    assert {run.font.split("+")[-1] for run in records} == {"DejaVu-Sans-Mono"}
    right_margin = 10 / 25.4 * 72
    for run in records:  # DejaVu Sans Mono advances 0.602 em
        assert run.left + len(run.text) * 0.602 * run.size <= run.page_width - right_margin, run.text
    assert any(f"hash {longest.hash}" in run.text for run in records), "\n".join(r.text for r in records)


def test_record_lines_wrap_with_a_hanging_indent_and_keep_the_hash_whole():
    row = (
        "acme", 12, "follow", "x" * 300 + "@example.com", None, "a" * 100, "b" * 100, "1.0", "c" * 64, "",
        {"alias": "v1-chat", "reason": "line one\nline two " * 12}, "203.0.113.7", "ua",
        "2025-03-01T12:00:05.250000Z", "0" * 64, "d" * 64,
    )  # fmt: skip
    lines = exports.pdf_record_lines(row)
    assert lines[0].startswith("#12  2025-03-01 12:00:05 UTC  Pin followed its alias to a new snapshot")
    assert all(len(line) <= exports.PDF_LINE_CHARS for line in lines)
    assert all(line.startswith(exports.PDF_INDENT) for line in lines[1:])
    assert not any("\n" in line for line in lines)
    assert sum(line.count("d" * 64) for line in lines) == 1
    assert "x" * 300 in "".join(line.strip() for line in lines)


def test_a_record_with_characters_past_latin_may_break_anywhere_the_others_only_at_the_code_s_wraps():
    base = (
        "acme", 1, "follow", "ops@example.com", None, "chat-a", "chat-b", "1.0", "c" * 64, "",
        {"alias": "v1-chat", "reason": "moved"}, None, "", "2025-03-01T12:00:05Z", "0" * 64, "d" * 64,
    )  # fmt: skip
    wide = (*base[:10], {"alias": "v1-chat", "reason": "移行 " * 80}, *base[11:])
    html = exports.pdf_lines([base, base, wide, base])
    assert html.count('<span class="wide">') == 1 and "移行" in html.split('<span class="wide">')[1]
    assert html.count("<span>") == 2  # the runs before and after it


def test_appendix_holds_the_full_text_of_every_terms_version_referenced(world):
    seed_ledger(world, n=6)
    pages, _ = pdf_text(world, {"terms_version": "2.0"})
    appendix = "\n".join(pages[-1:])
    assert "Terms 2.0: Standard terms 2.0" in appendix
    assert "The vendor gives 2.0 notice of every retirement." in appendix
    assert "Terms 1.0" not in appendix


def test_broken_chain_shows_on_the_cover(world):
    seed_ledger(world, n=3)
    LedgerHead.objects.filter(organization=world.org).update(seq=4)
    cover = pdf_text(world)[0][0]
    assert "BROKEN" in cover


def test_empty_range_gives_a_valid_pdf_that_says_so(world):
    seed_ledger(world, n=2)
    pages, result = pdf_text(world, {"from": "2030-01-01"})
    assert result["record_count"] == 0
    assert "Record count\n0" in pages[0] or "Record count 0" in pages[0]
    assert "No record of this export references a terms version." in pages[-1]
    assert ConsentRecord.objects.filter(organization=world.org).count() == 2


def test_the_consent_pdf_carries_the_portals_pades_signature_over_the_whole_file(
    world, settings, tmp_path, signing_keys
):
    from contracts import pdfsign

    seed_ledger(world, n=3)
    buffer = io.BytesIO()
    exports.pdf_write(out=buffer, org=world.org, filters=exports.export_filters_parse({}))
    pdf = buffer.getvalue()
    status = pdfsign.pdf_signature_check(pdf)
    assert status.ok, status
    assert len(PdfReader(io.BytesIO(pdf)).pages) >= 3  # still reads as the same document
    changed = bytearray(pdf)
    changed[changed.index(b"stream", 500) + 20] ^= 0x01
    assert not pdfsign.pdf_signature_check(bytes(changed)).intact
    # A reader trusting some other certificate sees it as signed but not trusted.
    other = tmp_path / "other"
    settings.SIGNING_KEYS_DIR = other
    assert not pdfsign.pdf_signature_check(pdf, trust_pem=pdfsign.certificate_pem()).trusted

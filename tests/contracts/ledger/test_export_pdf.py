"""The PDF export: cover facts, the records table across chunks, the terms appendix (text via pypdf)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from contracts.ledger import exports
from contracts.models import ConsentRecord, LedgerHead
from tests.contracts.export_helpers import seed_ledger

pytestmark = pytest.mark.django_db


def pdf_text(world, params=None, *, chunk_size=1000, org="default") -> tuple[list[str], dict]:
    buffer = io.BytesIO()
    result = exports.pdf_write(
        out=buffer, org=world.org if org == "default" else org,
        filters=exports.export_filters_parse(params or {}), chunk_size=chunk_size,
    )  # fmt: skip
    reader = PdfReader(io.BytesIO(buffer.getvalue()))
    return [page.extract_text() for page in reader.pages], result


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
        assert record.hash[:24] in body.replace(" ", "")
    assert result["pages"] == len(pages) >= 5


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

"""Ledger data for the export tests: terms, a few records per organisation, a bundle on disk."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone
from pypdf import PdfReader

from contracts.ledger.chain import ledger_append
from contracts.models import ContractTerms, LedgerAction, Organization

T0 = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)


def make_terms(version: str, body: str | None = None, at: dt.datetime = T0) -> ContractTerms:
    body = body or f"# Terms {version}\n\nThe vendor gives {version} notice of every retirement.\nÜnïcode ✓\n"
    return ContractTerms.objects.create(
        version=version,
        title=f"Standard terms {version}",
        body=body,
        body_sha256=ContractTerms.hash_body(body),
        effective_at=at,
        retired_bug_policy="Retired artifacts are kept 365 days.",
    )


def accept(org: Organization, terms: ContractTerms) -> None:
    Organization.objects.filter(pk=org.pk).update(accepted_terms=terms, accepted_terms_at=timezone.now())
    org.refresh_from_db()


def seed_ledger(world, *, n: int = 6) -> list:
    """n records for world.org over n days from T0 (terms v1 then v2), and 2 for the other org."""
    v1, v2 = make_terms("1.0"), make_terms("2.0", at=T0 + dt.timedelta(days=3))
    records = []
    accept(world.org, v1)
    for i in range(n):
        if i == n // 2:
            accept(world.org, v2)
        action = [LedgerAction.ACCEPT_TERMS, LedgerAction.CONSENT, LedgerAction.DEFER][i % 3]
        records.append(
            ledger_append(
                org=world.org,
                action=action,
                acting_user=world.admin,
                from_snapshot=world.old.name if action != LedgerAction.ACCEPT_TERMS else "",
                to_snapshot=world.current.name if action != LedgerAction.ACCEPT_TERMS else "",
                details={"note": f"step {i}", "n": i},
                ip="203.0.113.7",
                user_agent='pytest, "quoted"',
                at=T0 + dt.timedelta(days=i),
            )
        )
    accept(world.other_org, v1)
    for i in range(2):
        ledger_append(org=world.other_org, action=LedgerAction.CONSENT, at=T0 + dt.timedelta(days=i))
    return records


def rewrite_zip(src: Path, dst: Path, changes: dict[str, bytes | None]) -> Path:
    """Copy a zip, replacing (bytes) or dropping (None) the named members."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            if name in changes:
                if changes[name] is not None:
                    zout.writestr(name, changes[name])
            else:
                zout.writestr(name, zin.read(name))
        for name, data in changes.items():
            if name not in zin.namelist() and data is not None:
                zout.writestr(name, data)
    return dst


def read_member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(name)


def bundle_bytes_to(path: Path, org, filters=None) -> dict:
    from contracts.ledger import exports

    buffer = io.BytesIO()
    manifest = exports.bundle_write(out=buffer, org=org, filters=filters or exports.ExportFilters())
    path.write_bytes(buffer.getvalue())
    return manifest


@dataclass(frozen=True)
class PdfRun:
    """One run of text as a PDF reader draws it: font, size and left edge in points."""

    page: int
    text: str
    font: str
    size: float
    left: float
    page_width: float


def pdf_runs(pdf: bytes) -> list[PdfRun]:
    """Every non-blank text run of a PDF (pypdf's text visitor), with its size as printed: the
    font size times the text and page matrices' scale (WeasyPrint draws in CSS px, 0.75pt)."""
    runs: list[PdfRun] = []
    for number, page in enumerate(PdfReader(io.BytesIO(pdf)).pages):
        width = float(page.mediabox.width)

        def visit(text, cm, tm, font, size, number=number, width=width):
            if text.strip():
                scale = abs(cm[0])
                runs.append(
                    PdfRun(
                        page=number,
                        text=text.rstrip("\n"),
                        font=str((font or {}).get("/BaseFont", "")),
                        size=round(size * abs(tm[0]) * scale, 2),  # WeasyPrint writes 8pt as 7.9995
                        left=tm[4] * scale + cm[4],
                        page_width=width,
                    )
                )

        page.extract_text(visitor_text=visit)
    return runs

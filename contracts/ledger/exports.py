"""Exports of the consent ledger: CSV and NDJSON streamed, PDF and a signed evidence bundle built to a file.

Every export is logged as a ConsentExport row (who, format, filters, record count, file sha256).
CSV and NDJSON come from one pass over a server-side cursor (`.iterator(chunk_size=…)`), written in
batches, so memory stays flat however long the ledger is. The bundle's manifest is signed with the
"consent" Ed25519 key; `verify_bundle_standalone.py` checks it without Django.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import textwrap
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Max, Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe
from pypdf import PdfReader, PdfWriter

from contracts import pdfsign, signing
from contracts.audit.services import audit_record
from contracts.errors import ApplicationError, NotFound
from contracts.instants import parse_instant
from contracts.ledger.chain import HASHED_FIELDS
from contracts.ledger.checkpoints import checkpoint_as_dict
from contracts.ledger.verify import ledger_verify
from contracts.ledger.verify_bundle_standalone import FORMULA_START, cell, load_keys, neutral, verify_bundle
from contracts.ledger.words import details_words
from contracts.models import (
    AuditAction,
    ConsentExport,
    ConsentRecord,
    ContractTerms,
    ExportStatus,
    LedgerAction,
    LedgerCheckpoint,
    LedgerHead,
    Organization,
)

SIGNING_PURPOSE = "consent"
EXPORT_FIELDS = (*HASHED_FIELDS, "prev_hash", "hash")
STREAMED_FORMATS = ("csv", "ndjson")
BUILT_FORMATS = ("pdf", "bundle")
FORMATS = STREAMED_FORMATS + BUILT_FORMATS
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "ndjson": "application/x-ndjson",
    "pdf": "application/pdf",
    "bundle": "application/zip",
}
EXTENSIONS = {"csv": "csv", "ndjson": "ndjson", "pdf": "pdf", "bundle": "zip"}
CHUNK = 2000
LEDGER_LABELS = dict(LedgerAction.choices)
_VALUES = (
    "organization_id", "seq", "action", "actor_email", "migration_id", "from_snapshot", "to_snapshot",
    "terms_version", "terms_sha256", "diff_sha256", "details", "ip", "user_agent", "created_at",
    "prev_hash", "hash",
)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilters:
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None
    snapshot: str = ""
    action: str = ""
    terms_version: str = ""

    def as_dict(self) -> dict[str, str]:
        """The filters as given (JSON-able); stored on the export row and in the manifest."""
        out = {
            "from": _iso(self.date_from) if self.date_from else "",
            "to": _iso(self.date_to) if self.date_to else "",
            "snapshot": self.snapshot,
            "action": self.action,
            "terms_version": self.terms_version,
        }
        return {key: value for key, value in out.items() if value}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> ExportFilters:
        return export_filters_parse(data)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def export_format_parse(value: str | None) -> str:
    fmt = (value or "").strip().lower()
    if fmt not in FORMATS:
        raise ApplicationError(
            f"Unknown format {value!r}: use one of {', '.join(FORMATS)}.",
            fields={"format": f"one of {list(FORMATS)}"},
        )
    return fmt


def export_filters_parse(params: Mapping[str, Any]) -> ExportFilters:
    """Filters from query parameters. A date `to` includes that whole day. Raises ApplicationError."""
    date_from = parse_instant(params["from"], field="from") if params.get("from") else None
    date_to = parse_instant(params["to"], field="to", end_of_day=True) if params.get("to") else None
    if date_from and date_to and date_from > date_to:
        raise ApplicationError("'from' must not be after 'to'.", fields={"from": "must be on or before 'to'"})
    action = (params.get("action") or "").strip()
    if action and action not in LedgerAction.values:
        raise ApplicationError(
            f"Unknown action {action!r}.", fields={"action": f"one of {sorted(LedgerAction.values)}"}
        )
    snapshot = (params.get("snapshot") or "").strip()
    terms_version = (params.get("terms_version") or "").strip()
    for name, value, limit in (("snapshot", snapshot, 100), ("terms_version", terms_version, 32)):
        if len(value) > limit:
            raise ApplicationError(f"'{name}' is too long.", fields={name: f"at most {limit} characters"})
        if any(ord(char) < 32 for char in value):
            raise ApplicationError(
                f"'{name}' holds control characters.", fields={name: "printable text only"}
            )
    return ExportFilters(date_from, date_to, snapshot, action, terms_version)


# --------------------------------------------------------------------------------------------
# Selection
# --------------------------------------------------------------------------------------------


def export_queryset(
    *, org: Organization | None, filters: ExportFilters, max_pk: int | None = None
) -> QuerySet:
    """The records an export covers, in chain order. `org=None` means every organisation (staff)."""
    qs = ConsentRecord.objects.all()
    if org is not None:
        qs = qs.filter(organization=org)
    if filters.date_from:
        qs = qs.filter(created_at__gte=filters.date_from)
    if filters.date_to:
        qs = qs.filter(created_at__lte=filters.date_to)
    if filters.snapshot:
        qs = qs.filter(Q(from_snapshot=filters.snapshot) | Q(to_snapshot=filters.snapshot))
    if filters.action:
        qs = qs.filter(action=filters.action)
    if filters.terms_version:
        qs = qs.filter(terms_version=filters.terms_version)
    if max_pk is not None:
        qs = qs.filter(pk__lte=max_pk)
    return qs.order_by("organization_id", "seq")


def export_bound(qs: QuerySet) -> int:
    """The highest record id now: later appends stay out of an export that reads the rows twice."""
    return qs.aggregate(top=Max("pk"))["top"] or 0


def _slugs(org: Organization | None) -> dict[int, str]:
    if org is not None:
        return {org.pk: org.slug}
    return dict(Organization.objects.values_list("pk", "slug"))


def export_records(qs: QuerySet, *, org: Organization | None) -> Iterator[tuple]:
    """Rows in EXPORT_FIELDS order, values exactly as the hash covers them (see ledger.record_body)."""
    slugs = _slugs(org)
    utc = dt.UTC
    for row in qs.values_list(*_VALUES).iterator(chunk_size=CHUNK):
        created = row[13].astimezone(utc).isoformat().replace("+00:00", "Z")
        yield (slugs[row[0]], *row[1:13], created, row[14], row[15])


def record_dicts(rows: Iterable[tuple]) -> Iterator[dict[str, Any]]:
    for row in rows:
        yield dict(zip(EXPORT_FIELDS, row, strict=True))


# --------------------------------------------------------------------------------------------
# Serialisation (generators of bytes, in batches)
# --------------------------------------------------------------------------------------------


def _csv_row(row: tuple) -> tuple:
    # Every text cell through neutral() (formula injection, see verify_bundle_standalone.FORMULA_START);
    # cell() for the values that are not plain text; ints print the same through csv.
    mig, details, ip = row[4], row[10], row[11]
    return (
        neutral(row[0]),
        row[1],
        neutral(row[2]),
        neutral(row[3]),
        "" if mig is None else mig,
        *(neutral(value) for value in row[5:10]),
        "{}" if details == {} else cell(details),
        "" if ip is None else ip,
        *(neutral(value) for value in row[12:]),
    )


def csv_chunks(rows: Iterable[tuple], *, batch: int = CHUNK) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180 line ends: a lone \r inside a value gets quoted too
    writer.writerow(EXPORT_FIELDS)
    pending = []
    for row in rows:
        pending.append(_csv_row(row))
        if len(pending) >= batch:
            writer.writerows(pending)
            pending.clear()
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(pending)
    yield buffer.getvalue().encode()


def ndjson_chunks(rows: Iterable[tuple], *, batch: int = CHUNK) -> Iterator[bytes]:
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    lines: list[str] = []
    for row in rows:
        lines.append(dumps(dict(zip(EXPORT_FIELDS, row, strict=True))))
        if len(lines) >= batch:
            lines.append("")
            yield "\n".join(lines).encode()
            lines.clear()
    if lines:
        lines.append("")
        yield "\n".join(lines).encode()


SERIALISERS: dict[str, Callable[[Iterable[tuple]], Iterator[bytes]]] = {
    "csv": csv_chunks,
    "ndjson": ndjson_chunks,
}


# --------------------------------------------------------------------------------------------
# PostgreSQL fast path for CSV: COPY (SELECT …) TO STDOUT WITH CSV, cells formatted by the server
# --------------------------------------------------------------------------------------------

# Canonical JSON (sorted keys by code point, no spaces, no ASCII escaping): the text Python's
# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False) gives for the same value.
# PostgreSQL escapes strings as Python does. Numbers print alike except non-integers that Python
# writes with an exponent; the function refuses those and export_stream checks for them first.
CANONICAL_JSON_SQL = r"""
CREATE OR REPLACE FUNCTION pg_temp.vcp_canonical_json(j jsonb) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $f$
DECLARE kind text := jsonb_typeof(j); out text;
BEGIN
  IF kind = 'object' THEN
    SELECT '{' || coalesce(string_agg(to_json(k)::text || ':' || CASE WHEN jsonb_typeof(v) IN ('object', 'array')
           THEN pg_temp.vcp_canonical_json(v) ELSE v::text END, ',' ORDER BY k COLLATE "C"), '') || '}'
      INTO out FROM jsonb_each(j) AS e(k, v);
    RETURN out;
  ELSIF kind = 'array' THEN
    SELECT '[' || coalesce(string_agg(CASE WHEN jsonb_typeof(v) IN ('object', 'array')
           THEN pg_temp.vcp_canonical_json(v) ELSE v::text END, ',' ORDER BY n), '') || ']'
      INTO out FROM jsonb_array_elements(j) WITH ORDINALITY AS a(v, n);
    RETURN out;
  END IF;
  RETURN j::text;
END $f$
"""
RISKY_NUMBER_PATH = 'lax $.** ? (@.type() == "number" && @ != @.floor() && (@.abs() < 0.0001 || @.abs() >= 10000000000000000))'
# Python's isoformat(): "YYYY-MM-DDTHH:MM:SS", then ".ffffff" (six digits) unless zero. The server's
# ISO text drops trailing zeros of the fraction, so it is padded back; cheaper than to_char per row.
# Needs DateStyle ISO, which pg_csv_chunks sets for its transaction.
CREATED_AT_SQL = (
    "(SELECT CASE WHEN length(t) > 19 THEN rpad(t, 26, '0') ELSE t END || 'Z' FROM "
    "(SELECT replace((r.created_at AT TIME ZONE 'UTC')::text, ' ', 'T') AS t) AS s)"
)


# neutral() in SQL, for the COPY path: the same leading quote before the same first characters. Hashes,
# the created_at text, IP addresses and integers never start with one of them. The first character is
# tested by its code (ascii(), an integer): `left(x, 1) IN (…)` built a new text per cell and compared
# texts, which was the largest share of the export's time beside a raw COPY.
_QUOTE = "'"
_FORMULA_START_CODES = ", ".join(str(ord(char)) for char in FORMULA_START)


def _neutral_sql(expression: str) -> str:
    """CASE expression applying neutral(); a column reference keeps its name."""
    alias = f" AS {expression[2:]}" if expression.startswith("r.") else ""
    quote = _QUOTE * 4  # the SQL literal for one quote character
    return (
        f"CASE WHEN ascii({expression}) IN ({_FORMULA_START_CODES}) THEN {quote} || {expression} "
        f"ELSE {expression} END{alias}"
    )


# The details cell. An object is written inline (keys sorted by code point, each value as the server
# prints it), with the recursive function only for nested objects and arrays; '{}' costs one
# comparison. A bare JSON string is written as its text, as cell() writes it. Only a bare string or
# a bare scalar (a negative number starts with "-") can start like a formula, so neutral() wraps
# those branches alone: wrapped around the whole CASE it evaluated the details twice per row.
_DETAILS_STRING = _neutral_sql("(r.details #>> '{}')")
_DETAILS_SCALAR = _neutral_sql("pg_temp.vcp_canonical_json(r.details)")
DETAILS_SQL = (
    "CASE WHEN r.details = '{}'::jsonb THEN '{}' "
    f"WHEN jsonb_typeof(r.details) = 'string' THEN {_DETAILS_STRING} "
    "WHEN jsonb_typeof(r.details) = 'object' THEN "
    "(SELECT '{' || string_agg(to_json(k)::text || ':' || CASE WHEN jsonb_typeof(v) IN ('object', 'array') "
    "THEN pg_temp.vcp_canonical_json(v) ELSE v::text END, ',' ORDER BY k COLLATE \"C\") || '}' "
    f"FROM jsonb_each(r.details) AS e(k, v)) ELSE {_DETAILS_SCALAR} END"
)


def _pg_where(org: Organization | None, filters: ExportFilters) -> tuple[str, list[Any]]:
    where, params = ["TRUE"], []
    for clause, value in (
        ("r.organization_id = %s", org.pk if org else None),
        ("r.created_at >= %s", filters.date_from),
        ("r.created_at <= %s", filters.date_to),
        ("r.action = %s", filters.action or None),
        ("r.terms_version = %s", filters.terms_version or None),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    if filters.snapshot:
        where.append("(r.from_snapshot = %s OR r.to_snapshot = %s)")
        params += [filters.snapshot, filters.snapshot]
    return " AND ".join(where), params


def _copy_safe_key(org: Organization) -> str:
    return f"export:copy-safe-through-seq:{org.pk}"


def pg_copy_usable(org: Organization | None, filters: ExportFilters) -> bool:
    """PostgreSQL, and no record in range holds a number that the server would print differently.

    The ledger is append-only (the database refuses any UPDATE), so for one organisation the answer
    for its records up to a sequence number never changes: it is remembered in the cache, and the
    next export tests only the records appended since, instead of scanning the whole ledger again.
    """
    if connection.vendor != "postgresql":
        return False
    risky = "r.details <> '{}'::jsonb AND jsonb_path_exists(r.details, %s)"
    with connection.cursor() as cursor:
        if org is not None:
            through = cache.get(_copy_safe_key(org), 0)
            cursor.execute(
                "SELECT (SELECT max(seq) FROM contracts_consentrecord WHERE organization_id = %s), "
                f"EXISTS (SELECT 1 FROM contracts_consentrecord r WHERE r.organization_id = %s AND r.seq > %s AND {risky})",
                [org.pk, org.pk, through, RISKY_NUMBER_PATH],
            )
            last, found = cursor.fetchone()
            if not found:
                if last is not None and last > through:
                    cache.set(_copy_safe_key(org), last, None)
                return True
        where, params = _pg_where(org, filters)
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM contracts_consentrecord r WHERE {where} AND {risky})",
            [*params, RISKY_NUMBER_PATH],
        )
        return not cursor.fetchone()[0]


def pg_csv_chunks(
    org: Organization | None, filters: ExportFilters, counter: _Counter, *, block: int = 1 << 16
):
    """CSV bytes straight from COPY. Cells parse (csv module) to what csv_chunks writes."""
    where, params = _pg_where(org, filters)
    # One organisation: its slug is a constant, so the rows need no join.
    slug_sql = "%s AS organization" if org is not None else f"{_neutral_sql('o.slug')} AS organization"
    columns = ", ".join(
        [
            slug_sql, "r.seq", _neutral_sql("r.action"), _neutral_sql("r.actor_email"), "r.migration_id",
            _neutral_sql("r.from_snapshot"), _neutral_sql("r.to_snapshot"), _neutral_sql("r.terms_version"),
            _neutral_sql("r.terms_sha256"), _neutral_sql("r.diff_sha256"),
            f"({DETAILS_SQL}) AS details",
            "r.ip", _neutral_sql("r.user_agent"), f"{CREATED_AT_SQL} AS created_at", "r.prev_hash",
            'r.hash AS "hash"',
        ]
    )  # fmt: skip
    source = (
        "contracts_consentrecord r"
        if org is not None
        else "contracts_consentrecord r JOIN contracts_organization o ON o.id = r.organization_id"
    )
    if org is not None:
        params = [neutral(org.slug), *params]
    sql = (
        f"COPY (SELECT {columns} FROM {source} WHERE {where} ORDER BY r.organization_id, r.seq) "
        "TO STDOUT WITH (FORMAT csv, HEADER true)"
    )
    with connection.cursor() as cursor:
        cursor.execute(CANONICAL_JSON_SQL)
        cursor.execute("SET LOCAL datestyle TO 'ISO, YMD'")
        raw = cursor.connection.cursor()
        pending = bytearray()
        with raw.copy(sql, params) as copy:
            for data in copy:
                pending += data
                if len(pending) >= block:
                    yield bytes(pending)
                    pending.clear()
        if pending:
            yield bytes(pending)
        counter.count = raw.rowcount


# --------------------------------------------------------------------------------------------
# The export log and streamed exports
# --------------------------------------------------------------------------------------------


def export_create(
    *, org: Organization | None, fmt: str, filters: ExportFilters, requested_by=None
) -> ConsentExport:
    """Log an export before it runs (a streamed one is finished by export_stream), with its audit entry."""
    with transaction.atomic(savepoint=False):
        export = ConsentExport.objects.create(
            organization=org,
            requested_by=requested_by if getattr(requested_by, "pk", None) else None,
            format=fmt,
            filters={**filters.as_dict(), **({} if org else {"org": "*"})},
            status=ExportStatus.RUNNING if fmt in STREAMED_FORMATS else ExportStatus.PENDING,
        )
        audit_record(
            org=org,
            action=AuditAction.EXPORT_REQUEST,
            target_type="consent-export",
            target_id=export.pk,
            target_label=f"{fmt} export",
            after={"format": fmt, "filters": export.filters},
            acting_user=requested_by,
        )
    return export


def export_get(*, org: Organization | None, export_id: int | str) -> ConsentExport:
    """One export of `org` (None: any, for staff); NotFound for another organisation's."""
    try:
        qs = ConsentExport.objects.select_related("organization", "requested_by")
        export = qs.get(pk=int(export_id)) if org is None else qs.get(pk=int(export_id), organization=org)
    except (ConsentExport.DoesNotExist, ValueError, TypeError, OverflowError):
        raise NotFound("No such export.") from None
    return export


def export_list(*, org: Organization, limit: int = 50) -> list[ConsentExport]:
    return list(ConsentExport.objects.filter(organization=org).select_related("requested_by")[:limit])


def export_filename(export: ConsentExport) -> str:
    slug = export.organization.slug if export.organization_id else "all"
    return f"consents-{slug}-{export.pk}.{EXTENSIONS[export.format]}"


def export_stream(
    *, export: ConsentExport, org: Organization | None, filters: ExportFilters
) -> Iterator[bytes]:
    """The bytes of a CSV/NDJSON export; hashes them on the way and logs the result at the end.

    On PostgreSQL the read runs in one transaction (so the server-side cursor needs no WITH HOLD
    copy), and CSV comes from COPY … TO STDOUT with the cells formatted by the server.
    """
    digest = hashlib.sha256()
    counter = _Counter()
    done = False
    try:
        with transaction.atomic():
            if export.format == "csv" and pg_copy_usable(org, filters):
                chunks = pg_csv_chunks(org, filters, counter)
            else:
                rows = counter.wrap(export_records(export_queryset(org=org, filters=filters), org=org))
                chunks = SERIALISERS[export.format](rows)
            for chunk in chunks:
                digest.update(chunk)
                yield chunk
        done = True
    finally:
        ConsentExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.READY if done else ExportStatus.FAILED,
            progress=100 if done else 0,
            record_count=counter.count,
            file_sha256=digest.hexdigest() if done else "",
            error="" if done else "The download was interrupted.",
            finished_at=timezone.now(),
        )


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def wrap(self, rows: Iterable[tuple]) -> Iterator[tuple]:
        for row in rows:
            self.count += 1
            yield row


# --------------------------------------------------------------------------------------------
# Built exports: bundle and PDF (run by contracts.ledger.tasks)
# --------------------------------------------------------------------------------------------

Progress = Callable[[int], None]


def exports_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def terms_for(qs: QuerySet) -> list[ContractTerms]:
    versions = set(qs.exclude(terms_version="").values_list("terms_version", flat=True).distinct())
    return list(ContractTerms.objects.filter(version__in=versions).order_by("effective_at", "version"))


def chain_heads(*, org: Organization | None) -> dict[str, dict[str, Any]]:
    heads = LedgerHead.objects.select_related("organization")
    if org is not None:
        heads = heads.filter(organization=org)
    return {
        h.organization.slug: {"seq": h.seq, "hash": h.head_hash} for h in heads.order_by("organization__slug")
    }


def checkpoints_for(
    *, org: Organization | None, ranges: Mapping[str, tuple[int, int]]
) -> list[dict[str, Any]]:
    """Signed checkpoints whose sequence lies inside each organisation's exported range."""
    out = []
    for slug, (first, last) in sorted(ranges.items()):
        cps = LedgerCheckpoint.objects.filter(organization__slug=slug, seq__gte=first, seq__lte=last)

        out.extend(checkpoint_as_dict(cp, org_slug=slug) for cp in cps.order_by("seq"))
    return out


class _HashingWriter:
    """A writable file that hashes and counts what passes through it."""

    def __init__(self, target) -> None:
        self.target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        self.target.write(data)


def bundle_write(
    *,
    out,
    org: Organization | None,
    filters: ExportFilters,
    progress: Progress | None = None,
    generated_at: dt.datetime | None = None,
    extra_files: Mapping[str, bytes] | None = None,
    manifest_format: str = "consent-evidence-bundle/1",
    max_pk: int | None = None,
) -> dict[str, Any]:
    """Write the evidence bundle (a zip) to the binary file `out`; returns the signed manifest.

    `extra_files` (name -> bytes, e.g. an audit pack's PDF and JSON) are stored beside the records and
    listed with their sha256 in the signed manifest, so the standalone verifier covers them too.
    `max_pk` bounds the records (default: the highest id now)."""
    generated_at = generated_at or timezone.now()
    base = export_queryset(org=org, filters=filters)
    max_pk = export_bound(base) if max_pk is None else max_pk
    qs = export_queryset(org=org, filters=filters, max_pk=max_pk)
    total = qs.count()
    files: dict[str, dict[str, Any]] = {}
    ranges: dict[str, list[int]] = {}
    done = 0
    step = max(total // 50, 1)

    def tick(rows: Iterable[tuple], track: bool) -> Iterator[tuple]:
        nonlocal done
        for row in rows:
            if track:
                first_last = ranges.setdefault(row[0], [row[1], row[1], 0])
                first_last[1] = row[1]
                first_last[2] += 1
            done += 1
            if progress and done % step == 0:
                progress(min(95, 5 + 90 * done // max(2 * total, 1)))
            yield row

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, serialise, track in (
            ("records.ndjson", ndjson_chunks, True),
            ("records.csv", csv_chunks, False),
        ):
            with transaction.atomic(), zf.open(name, "w", force_zip64=True) as raw:
                writer = _HashingWriter(raw)
                for chunk in serialise(tick(export_records(qs, org=org), track)):
                    writer.write(chunk)
            files[name] = {"sha256": writer.sha.hexdigest(), "bytes": writer.size}
        for terms in terms_for(qs):
            data = terms.body.encode()
            files[f"terms/{terms.version}.md"] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "bytes": len(data),
            }
            zf.writestr(f"terms/{terms.version}.md", data)
        checkpoints = checkpoints_for(org=org, ranges={slug: (r[0], r[1]) for slug, r in ranges.items()})
        data = json.dumps(checkpoints, indent=2, ensure_ascii=False).encode()
        files["checkpoints.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        zf.writestr("checkpoints.json", data)
        for name, data in sorted((extra_files or {}).items()):
            files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            zf.writestr(name, data)
        heads = chain_heads(org=org)
        organizations = {
            slug: {
                "first_seq": r[0], "last_seq": r[1], "count": r[2],
                "head_seq": heads.get(slug, {}).get("seq", 0), "head_hash": heads.get(slug, {}).get("hash", ""),
            }
            for slug, r in sorted(ranges.items())
        }  # fmt: skip
        seqs = [r for r in ranges.values()]
        manifest = {
            "format": manifest_format,
            "organization": org.slug if org else "*",
            "organization_name": org.name if org else "all organisations",
            "generated_at": _iso(generated_at),
            "filters": filters.as_dict(),
            "record_count": sum(r[2] for r in seqs),
            "first_seq": min((r[0] for r in seqs), default=None),
            "last_seq": max((r[1] for r in seqs), default=None),
            "chain_head": heads.get(org.slug) if org else heads,
            "organizations": organizations,
            "checkpoint_count": len(checkpoints),
            "terms_versions": sorted(name[6:-3] for name in files if name.startswith("terms/")),
            "files": dict(sorted(files.items())),
            "key_id": signing.current_key_id(SIGNING_PURPOSE),
            "signature_algorithm": "Ed25519 over the bytes of manifest.json (manifest.sig, base64)",
        }
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode()
        key_id, signature = signing.sign(SIGNING_PURPOSE, manifest_bytes)
        assert key_id == manifest["key_id"]
        zf.writestr("manifest.json", manifest_bytes)
        zf.writestr("manifest.sig", signature + "\n")
    if progress:
        progress(99)
    return manifest


def public_keys_pem() -> str:
    """Every current consent key, each after a '# kid:' line (the format the standalone verifier reads)."""
    ring = signing.keyring(SIGNING_PURPOSE)
    return "".join(f"# kid: {kid}\n{signing.public_key_pem(SIGNING_PURPOSE, kid)}" for kid in sorted(ring))


def verify_file(path: str | Path, own_checkpoints: Iterable[dict] = ()) -> list[str]:
    """What is wrong with a bundle, checked with the same code as the standalone script, and held
    against the organisation's own copies of signed checkpoints if given."""

    try:
        return verify_bundle(str(path), load_keys(public_keys_pem()), list(own_checkpoints))
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as exc:
        return [f"{Path(path).name}: not a readable evidence bundle ({exc})"]


# --------------------------------------------------------------------------------------------
# PDF (WeasyPrint, rendered in chunks and joined with pypdf)
# --------------------------------------------------------------------------------------------


def _html_to_pdf(html: str) -> bytes:
    from weasyprint import HTML  # noqa: PLC0415 -- loads Pango and fonts: only PDF rendering pays for it

    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def _chunked(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# The records are monospaced text in one <pre>: WeasyPrint lays out a <pre> about ten times faster
# than a <table> of the same rows (tables measure every cell of every row first). Each record is a
# block of two lines (three when its details are long) at 8pt on a landscape page, wrapped here to
# PDF_LINE_CHARS columns with a hanging indent, so the next record's number stands out at the margin:
#   #seq  time (UTC, to the second)  action in words  by actor  ip address  details in words
#       migration #id: from -> to  terms version (sha256 prefix...)  hash <the record's full sha256>
# A4 landscape less the 10 mm margins is 785pt; DejaVu Sans Mono advances 0.602 em, 4.82pt at 8pt:
# 163 columns, of which PDF_LINE_CHARS leaves three spare. What it costs WeasyPrint (measured in
# tests/bench/test_export_scale.py, figures in docs/benchmarks.md):
# - the records go in runs of PDF_RUN_RECORDS, each its own <span>: a single text run for the whole
#   chunk costs time quadratic in its length (WeasyPrint re-encodes the rest of the run at every
#   line), while an element per record (a bold sequence number, say) costs 10-40% more time;
# - the lines are wrapped here, not by `overflow-wrap: anywhere` (which costs about 20%); only a
#   record holding characters past Latin, Greek and Cyrillic (which DejaVu Sans Mono may lack, and a
#   wider fallback font would draw) gets a span of its own that may break anywhere, so no line runs
#   off the page.
PDF_LINE_CHARS = 160
PDF_INDENT = "    "
PDF_RUN_RECORDS = 50
_BLANKS = dict.fromkeys(map(ord, "\t\n\r\v\f"), " ")


def _pdf_fields(fields: Iterable[str], *, lead: str = "") -> list[str]:
    """Fields two spaces apart, wrapped to PDF_LINE_CHARS between fields with a hanging indent; a
    field is split only when it is longer than a line by itself."""
    lines: list[str] = []
    line = lead
    for field in fields:
        field = field.translate(_BLANKS)  # a line break inside a value would break the layout
        if not line.strip():
            line += field
        elif len(line) + 2 + len(field) <= PDF_LINE_CHARS:
            line += "  " + field
        else:
            lines.append(line)
            line = PDF_INDENT + field
        if len(line) > PDF_LINE_CHARS:
            *full, line = textwrap.wrap(
                line, PDF_LINE_CHARS, subsequent_indent=PDF_INDENT, break_on_hyphens=False
            )
            lines += full
    lines.append(line)
    return lines


def pdf_record_lines(row: tuple, *, with_org: bool = False) -> list[str]:
    """One record (a row of export_records) as the lines the PDF shows."""
    created, ip = row[13], row[11]
    head = (f"{row[0]} " if with_org else "") + (
        f"#{row[1]}  {created[:10]} {created[11:19]} UTC  {LEDGER_LABELS.get(row[2], row[2])}"
    )
    if row[5] and row[6]:
        moved = f"{row[5]} -> {row[6]}"
    else:
        moved = f"snapshot {row[5] or row[6]}" if row[5] or row[6] else ""
    about = ": ".join(part for part in (f"migration #{row[4]}" if row[4] is not None else "", moved) if part)
    terms = (f"terms {row[7]}" + (f" ({row[8][:12]}...)" if row[8] else "")) if row[7] else ""
    first = (head, f"by {row[3]}" if row[3] else "", f"ip {ip}" if ip else "", details_words(row[2], row[10]))
    second = (about, terms, f"hash {row[15]}")
    return _pdf_fields(filter(None, first)) + _pdf_fields(filter(None, second), lead=PDF_INDENT)


def pdf_lines(rows: Iterable[tuple], *, with_org: bool = False) -> str:
    """Escaped text of the records for the template (marked safe there), in runs (see above)."""
    runs: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            text = "\n".join(run)
            runs.append(f"<span>{escape(text)}</span>")
            run.clear()

    for row in rows:
        text = "\n".join(pdf_record_lines(row, with_org=with_org))
        if max(text) < "\u0530":
            run.append(text)
            if len(run) >= PDF_RUN_RECORDS:
                flush()
        else:
            flush()
            runs.append(f'<span class="wide">{escape(text)}</span>')
    flush()
    return mark_safe("\n".join(runs))


def pdf_records_html(batch: list[tuple], *, context: Mapping[str, Any], first: int) -> str:
    """The HTML of one chunk of records (one WeasyPrint document)."""
    return render_to_string(
        "contracts/exports/pdf_records.html",
        {
            **context,
            "lines": pdf_lines(batch, with_org=context["org"] is None),
            "first": first,
            "last": first + len(batch) - 1,
        },
    )


def pdf_write(
    *,
    out,
    org: Organization | None,
    filters: ExportFilters,
    progress: Progress | None = None,
    chunk_size: int = 1000,
    generated_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Write the PDF to the binary file `out`: cover, records table (chunks of `chunk_size` records
    rendered as separate documents, so WeasyPrint's memory stays bounded), terms appendix."""
    generated_at = generated_at or timezone.now()
    base = export_queryset(org=org, filters=filters)
    qs = export_queryset(org=org, filters=filters, max_pk=export_bound(base))
    total = qs.count()
    orgs = (
        [org]
        if org
        else list(Organization.objects.filter(pk__in=qs.values("organization_id")).order_by("slug"))
    )
    verification = [(o, ledger_verify(org=o)) for o in orgs]
    heads = chain_heads(org=org)
    terms = terms_for(qs)
    context = {
        "org": org, "filters": filters.as_dict(), "total": total, "generated_at": _iso(generated_at),
        "heads": heads, "verification": verification, "terms": terms,
    }  # fmt: skip
    writer = PdfWriter()
    writer.append(
        PdfReader(io.BytesIO(_html_to_pdf(render_to_string("contracts/exports/pdf_cover.html", context))))
    )
    if progress:
        progress(5)
    done = 0
    with transaction.atomic():
        for batch in _chunked(export_records(qs, org=org), chunk_size):
            html = pdf_records_html(batch, context=context, first=done + 1)
            writer.append(PdfReader(io.BytesIO(_html_to_pdf(html))))
            done += len(batch)
            if progress:
                progress(min(95, 5 + 90 * done // max(total, 1)))
    writer.append(
        PdfReader(io.BytesIO(_html_to_pdf(render_to_string("contracts/exports/pdf_appendix.html", context))))
    )
    writer.add_metadata({"/Title": f"Consent history: {org.name if org else 'all organisations'}"})
    unsigned = io.BytesIO()
    writer.write(unsigned)
    # PAdES: readers show the export as signed by the portal and unmodified (contracts/pdfsign.py).
    out.write(
        pdfsign.pdf_sign(
            unsigned.getvalue(),
            reason=f"Consent history of {org.slug if org else 'all organisations'}, {total} records, "
            f"generated {_iso(generated_at)}",
        )
    )
    return {"record_count": total, "pages": len(writer.pages)}

"""The audit pack: why the product an organisation is served differs from the one it evaluated, with
the evidence.

`audit_pack_document` assembles the facts (one dict, JSON-able): per alias the procurement baseline,
every change of the served snapshot with the ledger records that authorised it (or the notice trail of
a forced move), notices and acknowledgements, extended support, the snapshot served now and the
refreshed eval against the baseline (regressions first), under a plain-language summary.
`audit_pack_write` renders it to a PAdES-signed PDF and writes one zip that is also a consent evidence
bundle (manifest signed with the consent key; records, checkpoints, terms, the PDF and the JSON all
listed with their sha256), so `verify_bundle_standalone.py` checks the whole pack offline.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone

from contracts import pdfsign
from contracts.ledger import exports
from contracts.ledger.checkpoints import checkpoint_as_dict
from contracts.ledger.verify import ledger_verify
from contracts.models import (
    AliasMove,
    AuditPack,
    ConsentRecord,
    ContractTerms,
    EvalRun,
    EvalRunState,
    ExtendedSupport,
    LedgerAction,
    LedgerCheckpoint,
    Migration,
    Pin,
    PinChange,
    ProcurementBaseline,
    UpgradePolicy,
)
from contracts.outbox import organization_notices
from contracts.renewal.selectors import delta_sentence, run_deltas

FORMAT = "audit-pack/1"
MIGRATION_REASON = re.compile(r"^migration #(\d+):")
ALIAS_REASON = re.compile(r"^alias (\S+) moved:")
Progress = Callable[[int], None]


def _iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _day(moment: dt.datetime | None) -> str:
    return "an unknown date" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%d")


def _in_period(moment: dt.datetime | None, pack: AuditPack) -> bool:
    if moment is None:
        return True
    if pack.period_from and moment < pack.period_from:
        return False
    return not (pack.period_to and moment > pack.period_to)


def _records(org, max_pk: int) -> dict[int, dict[str, Any]]:
    """Every record of the organisation's chain up to `max_pk`, by seq, exactly as the bundle holds them."""
    qs = exports.export_queryset(org=org, filters=exports.ExportFilters(), max_pk=max_pk)
    return {rec["seq"]: rec for rec in exports.record_dicts(exports.export_records(qs, org=org))}


def _cite(rec: dict[str, Any]) -> dict[str, Any]:
    """What a reader needs from one authorising record: who, when, under which terms, which diff."""
    return {
        "seq": rec["seq"], "action": rec["action"], "actor": rec["actor_email"], "at": rec["created_at"],
        "migration": rec["migration_id"], "from": rec["from_snapshot"], "to": rec["to_snapshot"],
        "terms_version": rec["terms_version"], "terms_sha256": rec["terms_sha256"],
        "diff_sha256": rec["diff_sha256"], "hash": rec["hash"],
    }  # fmt: skip


def _notice(n: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": n["id"], "milestone": n["milestone"], "kind": n["kind"], "channel": n["channel"],
        "status": n["status"], "subject": n["subject"], "snapshot": n["snapshot"],
        "migration": n["migration_id"], "due_at": _iso(n["due_at"]), "sent_at": _iso(n["sent_at"]),
        "sent_to": n["sent_to"], "acknowledged_at": _iso(n["acknowledged_at"]),
        "acknowledged_by": n["acknowledged_by"],
    }  # fmt: skip


def _change_kind(change: PinChange, migration: Migration | None, records: list[dict[str, Any]]) -> str:
    actions = {r["action"] for r in records}
    if change.from_snapshot_id is None:
        return "pinned"
    if migration is not None:
        if "rolled back" in change.reason or (
            LedgerAction.ROLLBACK in actions and change.to_snapshot_id == migration.from_snapshot_id
        ):
            return "rollback"
        if LedgerAction.FORCED in actions:
            return "forced"
        return "consented"
    if ALIAS_REASON.match(change.reason or ""):
        return "alias-move"
    return "vendor-change"


def _section(
    *, pack: AuditPack, pin: Pin, records: dict[int, dict], notices: list[dict], at: dt.datetime
) -> dict:
    org = pin.organization
    changes_qs = (
        PinChange.objects.filter(pin=pin)
        .select_related("from_snapshot", "to_snapshot", "actor")
        .order_by("changed_at", "id")
    )
    all_changes = list(changes_qs)
    served = {c.to_snapshot.name for c in all_changes} | {pin.snapshot.name}
    served |= {c.from_snapshot.name for c in all_changes if c.from_snapshot_id}
    migrations = {
        m.pk: m for m in Migration.objects.filter(pin=pin).select_related("from_snapshot", "to_snapshot")
    }
    by_migration: dict[int, list[dict]] = {}
    for rec in records.values():
        if rec["migration_id"] in migrations:
            by_migration.setdefault(rec["migration_id"], []).append(rec)
    pin_notices = [
        n for n in notices if (n["migration_id"] in migrations or (n["snapshot"] and n["snapshot"] in served))
    ]

    baselines = []
    for b in (
        ProcurementBaseline.objects.filter(organization=org, result__snapshot__family_id=pin.alias.family_id)
        .select_related("suite", "result__snapshot", "marked_by")
        .order_by("suite__slug")
    ):
        marking = next(
            (
                r for r in sorted(records.values(), key=lambda r: -r["seq"])
                if r["action"] == LedgerAction.BASELINE and (r["details"] or {}).get("suite") == b.suite.slug
            ),
            None,
        )  # fmt: skip
        baselines.append(
            {
                "suite": b.suite.slug, "suite_name": b.suite.name, "snapshot": b.result.snapshot.name,
                "marked_at": _iso(b.marked_at), "marked_by": b.marked_by.get_username() if b.marked_by else "",
                "scores": {m: e.get("score") for m, e in sorted((b.result.scores or {}).items())},
                "ledger": _cite(marking) if marking else None,
            }
        )  # fmt: skip

    changes = []
    policy_changes = [
        c for c in all_changes if c.from_snapshot_id == c.to_snapshot_id or c.from_snapshot_id is None
    ]
    for change in all_changes:
        if change.from_snapshot_id is not None and change.from_snapshot_id == change.to_snapshot_id:
            continue  # a policy change: quoted where it authorised an alias move
        if not _in_period(change.changed_at, pack):
            continue
        match = MIGRATION_REASON.match(change.reason or "")
        migration = migrations.get(int(match.group(1))) if match else None
        recs = sorted(by_migration.get(migration.pk, []), key=lambda r: r["seq"]) if migration else []
        kind = _change_kind(change, migration, recs)
        entry: dict[str, Any] = {
            "at": _iso(change.changed_at), "from": change.from_snapshot.name if change.from_snapshot_id else None,
            "to": change.to_snapshot.name, "kind": kind, "reason": change.reason,
            "actor": change.actor.get_username() if change.actor_id else "system",
            "migration": migration.pk if migration else None, "authorisation": None, "records": [],
            "notices": [], "alias_move": None, "policy": None,
        }  # fmt: skip
        if migration is not None:
            entry["records"] = [_cite(r) for r in recs]
            wanted = {"rollback": LedgerAction.ROLLBACK, "forced": LedgerAction.FORCED}.get(
                kind, LedgerAction.CONSENT
            )
            authorising = [r for r in recs if r["action"] == wanted]
            entry["authorisation"] = _cite(authorising[-1]) if authorising else None
            if kind == "forced":
                entry["notices"] = [
                    _notice(n) for n in notices
                    if (n["migration_id"] == migration.pk or n["snapshot"] == migration.from_snapshot.name)
                    and (n["sent_at"] or n["due_at"]) <= change.changed_at
                ]  # fmt: skip
        elif kind == "alias-move":
            move = (
                AliasMove.objects.filter(
                    alias=pin.alias, to_snapshot=change.to_snapshot, moved_at__lte=change.changed_at
                )
                .order_by("-moved_at")
                .first()
            )
            if move is not None:
                entry["alias_move"] = {
                    "at": _iso(move.moved_at),
                    "reason": move.reason,
                    "from": move.from_snapshot.name if move.from_snapshot_id else None,
                    "to": move.to_snapshot.name,
                }
            chosen = [
                c
                for c in policy_changes
                if c.to_policy == UpgradePolicy.FOLLOW and c.changed_at <= change.changed_at
            ]
            if chosen:
                entry["policy"] = {
                    "policy": UpgradePolicy.FOLLOW, "set_at": _iso(chosen[-1].changed_at),
                    "set_by": chosen[-1].actor.get_username() if chosen[-1].actor_id else "system",
                }  # fmt: skip
        changes.append(entry)

    support = []
    for grant in (
        ExtendedSupport.objects.filter(organization=org, snapshot__name__in=served)
        .select_related("snapshot")
        .order_by("starts_at")
    ):
        rec = next(
            (
                r
                for r in records.values()
                if r["action"] == LedgerAction.EXTENDED_SUPPORT
                and (r["details"] or {}).get("grant_id") == grant.pk
            ),
            None,
        )
        support.append(
            {
                "snapshot": grant.snapshot.name, "starts_at": _iso(grant.starts_at), "until": _iso(grant.until),
                "cancelled_at": _iso(grant.cancelled_at), "ledger": _cite(rec) if rec else None,
            }
        )  # fmt: skip

    refreshed = []
    for b in baselines:
        run = (
            EvalRun.objects.filter(
                organization=org, suite__slug=b["suite"], snapshot=pin.snapshot, state=EvalRunState.DONE
            )
            .select_related("suite", "snapshot", "organization")
            .order_by("-finished_at", "-id")
            .first()
        )
        if run is None:
            refreshed.append({"suite": b["suite"], "snapshot": pin.snapshot.name, "run": None, "metrics": []})
            continue
        _, rows = run_deltas(run)
        refreshed.append(
            {
                "suite": b["suite"], "suite_name": run.suite.name, "snapshot": run.snapshot.name, "run": run.pk,
                "finished_at": _iso(run.finished_at), "baseline_snapshot": b["snapshot"],
                "regressions": [m["metric"] for m in rows if m["regression"]],
                "metrics": [{k: m[k] for k in ("metric", "before", "after", "delta", "tolerance", "lower_is_better", "regression")} for m in rows],
            }
        )  # fmt: skip

    return {
        "alias": pin.alias.name,
        "family": pin.alias.family.slug,
        "policy": pin.policy,
        "served_now": {
            "snapshot": pin.snapshot.name,
            "status": pin.snapshot.status_at(at),
            "since": _iso(pin.updated_at),
            "digest": pin.snapshot.digest,
        },
        "baselines": baselines,
        "changes": changes,
        "notices": [_notice(n) for n in pin_notices if _in_period(n["sent_at"] or n["due_at"], pack)],
        "extended_support": support,
        "refreshed_evals": refreshed,
    }


def _summary(section: dict[str, Any], at: dt.datetime) -> list[str]:
    """The plain-language story of one alias, for a compliance reader."""
    lines = []
    alias = section["alias"]
    if section["baselines"]:
        for b in section["baselines"]:
            lines.append(
                f"{alias}: evaluated on {b['snapshot']} ({b['suite_name']}), marked as the procurement baseline on "
                f"{b['marked_at'][:10]}{' by ' + b['marked_by'] if b['marked_by'] else ''}."
            )
    else:
        lines.append(f"{alias}: no procurement baseline was marked.")
    for c in section["changes"]:
        if c["kind"] == "pinned":
            lines.append(f"Pinned to {c['to']} on {c['at'][:10]}.")
            continue
        a = c["authorisation"]
        if c["kind"] == "consented" and a:
            lines.append(
                f"Moved from {c['from']} to {c['to']} on {c['at'][:10]} with the consent of {a['actor']} "
                f"(given {a['at'][:10]}) under terms v{a['terms_version']}"
                + (f", after being shown diff {a['diff_sha256'][:12]}…" if a["diff_sha256"] else "")
                + f" (ledger record #{a['seq']})."
            )
        elif c["kind"] == "forced":
            sent = sorted({(n["sent_at"] or n["due_at"])[:10] for n in c["notices"] if n["status"] == "sent"})
            acked = sorted({n["acknowledged_by"] for n in c["notices"] if n["acknowledged_by"]})
            lines.append(
                f"Moved from {c['from']} to {c['to']} on {c['at'][:10]}, forced at retirement"
                + (f" after notices on {', '.join(sent)}" if sent else " (no notice was sent)")
                + (f", acknowledged by {', '.join(acked)}" if acked else ", none acknowledged")
                + (f" (ledger record #{a['seq']})." if a else ".")
            )
        elif c["kind"] == "rollback" and a:
            lines.append(
                f"Rolled back from {c['from']} to {c['to']} on {c['at'][:10]} by {a['actor']} (ledger record #{a['seq']})."
            )
        elif c["kind"] == "alias-move":
            policy = c["policy"]
            lines.append(
                f"Moved from {c['from']} to {c['to']} on {c['at'][:10]} when the vendor moved {alias}"
                + (
                    f", under the follow policy chosen by {policy['set_by']} on {policy['set_at'][:10]}."
                    if policy
                    else "."
                )
            )
        else:
            lines.append(
                f"Changed from {c['from']} to {c['to']} on {c['at'][:10]} by {c['actor']}: {c['reason'] or 'no reason given'}."
            )
    for grant in section["extended_support"]:
        lines.append(f"Extended support bought for {grant['snapshot']} until {grant['until'][:10]}.")
    lines.append(f"Served today ({_day(at)}): {section['served_now']['snapshot']}.")
    for r in section["refreshed_evals"]:
        if r["run"] is None:
            lines.append(f"No refreshed eval of {r['suite']} on {r['snapshot']} yet.")
            continue
        moved = [m for m in r["metrics"] if m["regression"]] or r["metrics"][:2]
        lines.append(
            f"Refreshed eval of {r['suite_name']} on {r['snapshot']} ({r['finished_at'][:10]}): "
            + ("; ".join(delta_sentence(m) for m in moved) or "no metric")
            + ("." if r["regressions"] else "; no regression beyond tolerance.")
        )
    return lines


def audit_pack_document(
    *, pack: AuditPack, at: dt.datetime | None = None, progress: Progress | None = None
) -> tuple[dict[str, Any], int]:
    """The pack's facts as one JSON-able dict, and the highest ledger record id it covers."""
    at = at or timezone.now()
    org = pack.organization
    max_pk = ConsentRecord.objects.filter(organization=org).aggregate(top=Max("pk"))["top"] or 0
    records = _records(org, max_pk)
    notices = organization_notices(org=org)
    pins = (
        Pin.objects.filter(organization=org)
        .select_related("alias", "alias__family", "snapshot", "organization")
        .order_by("alias__name")
    )
    if pack.aliases:
        pins = pins.filter(alias__name__in=pack.aliases)
    pins = list(pins)
    sections = []
    for index, pin in enumerate(pins, 1):
        sections.append(_section(pack=pack, pin=pin, records=records, notices=notices, at=at))
        if progress:
            progress(5 + 45 * index // max(len(pins), 1))
    cited: set[int] = set()
    for s in sections:
        for b in s["baselines"]:
            if b["ledger"]:
                cited.add(b["ledger"]["seq"])
        for c in s["changes"]:
            cited |= {r["seq"] for r in c["records"]}
        for g in s["extended_support"]:
            if g["ledger"]:
                cited.add(g["ledger"]["seq"])
    checkpoints = [
        checkpoint_as_dict(cp, org_slug=org.slug)
        for cp in LedgerCheckpoint.objects.filter(organization=org).order_by("seq")
    ]
    verification = ledger_verify(org=org)
    versions = sorted({records[s]["terms_version"] for s in cited if records[s]["terms_version"]})
    document = {
        "format": FORMAT,
        "organization": {"slug": org.slug, "name": org.name},
        "generated_at": _iso(at),
        "period": {"from": _iso(pack.period_from), "to": _iso(pack.period_to)},
        "aliases": [s["alias"] for s in sections],
        "summary": [line for s in sections for line in _summary(s, at)],
        "sections": sections,
        "terms": [
            {"version": t.version, "title": t.title, "sha256": t.body_sha256, "effective_at": _iso(t.effective_at)}
            for t in ContractTerms.objects.filter(version__in=versions).order_by("effective_at")
        ],
        "ledger": {
            "records": [records[s] for s in sorted(cited)],
            "checkpoints": checkpoints,
            "record_count": len(records),
            "chain_head": {"seq": max(records) if records else 0, "hash": records[max(records)]["hash"] if records else "0" * 64},
            "intact_at_generation": verification.intact,
            "how_to_verify": (
                "This zip is a consent evidence bundle: run `python3 verify_bundle_standalone.py PACK.zip KEYS.pem` "
                f"with the keys from {settings.SITE_URL}/.well-known/consent-signing-key.pem?all=1. It checks the "
                "manifest signature, the sha256 of every file (this JSON and the PDF included), every record's "
                "hash and link, the checkpoints, and that each record quoted here is the one in records.ndjson."
            ),
        },
    }  # fmt: skip
    return document, max_pk


def audit_pack_filename(pack: AuditPack) -> str:
    return f"audit-pack-{pack.organization.slug}-{pack.pk}.zip"


def audit_pack_pdf(document: dict[str, Any]) -> bytes:
    """The PDF of the pack, PAdES-signed by the portal."""
    from weasyprint import HTML  # noqa: PLC0415 -- loads Pango and fonts: only PDF rendering pays for it

    html = render_to_string("contracts/renewal/pdf/audit_pack.html", {"doc": document})
    pdf = HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()
    return pdfsign.pdf_sign(
        pdf,
        reason=f"Audit pack of {document['organization']['slug']} generated {document['generated_at']}",
    )


def audit_pack_write(
    *, out, pack: AuditPack, at: dt.datetime | None = None, progress: Progress | None = None
) -> dict[str, Any]:
    """Write the pack's zip to the binary file `out`; returns the signed manifest."""
    at = at or timezone.now()
    document, max_pk = audit_pack_document(pack=pack, at=at, progress=progress)
    pdf = audit_pack_pdf(document)
    if progress:
        progress(70)
    data = json.dumps(document, indent=2, ensure_ascii=False).encode()
    return exports.bundle_write(
        out=out, org=pack.organization, filters=exports.ExportFilters(), generated_at=at,
        extra_files={"audit-pack.json": data, "audit-pack.pdf": pdf}, manifest_format=FORMAT, max_pk=max_pk,
        progress=(lambda value: progress(70 + value * 29 // 100)) if progress else None,
    )  # fmt: skip

"""Demo catalog: families, snapshots in every lifecycle state, aliases with history, changelog."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.db import transaction
from django.utils import timezone

from contracts.catalog import services
from contracts.models import (
    Alias,
    ChangelogEntry,
    ChangelogKind,
    ModelFamily,
    Snapshot,
)


def _digest(name: str) -> str:
    return hashlib.sha256(f"artifact:{name}".encode()).hexdigest()


def _day(days: int) -> dt.datetime:
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    return now + dt.timedelta(days=days)


def _named_day(name: str, fallback_days: int) -> dt.datetime:
    """A snapshot is released on the date its name carries (noon UTC), so names and dates agree;
    a name without a past date falls back to its offset from today."""
    try:
        named = dt.datetime.strptime("-".join(name.split("-")[-3:]), "%Y-%m-%d")
    except ValueError:
        return _day(fallback_days)
    named = named.replace(hour=12, tzinfo=dt.UTC)
    return named if named <= timezone.now() else _day(fallback_days)


# The snapshot in preview is named after its (future) release date, whenever the demo is seeded.
PREVIEW_NAME = f"chat-{_day(45):%Y-%m-%d}"

# name, released (days from now, used only when the name carries no past date), deprecated,
# retires, retention, replacement, config, price in/out, latency
CATALOG = {
    "chat": {
        "name": "Chat",
        "team": "Chat Models Team",
        "email": "chat-team@vendor.example",
        "snapshots": [
            ("chat-2024-03-01", -630, -400, -250, -30, "chat-2024-11-15", 32000, "1.0", "3.0", 900),
            ("chat-2024-11-15", -375, -120, -20, 340, "chat-2025-06-01", 64000, "0.8", "2.4", 700),
            ("chat-2025-06-01", -180, -10, 80, 445, "chat-2025-09-29", 128000, "0.6", "1.8", 520),
            ("chat-2025-09-29", -60, None, None, None, None, 200000, "0.5", "1.5", 430),
            (PREVIEW_NAME, 45, None, None, None, None, 256000, "0.5", "1.5", 400),
        ],
        "aliases": [
            ("v1-chat", ["chat-2024-03-01", "chat-2024-11-15", "chat-2025-06-01", "chat-2025-09-29"]),
            ("chat-latest", ["chat-2025-06-01", "chat-2025-09-29"]),
        ],
    },
    "embed": {
        "name": "Embeddings",
        "team": "Retrieval Team",
        "email": "retrieval-team@vendor.example",
        "snapshots": [
            ("embed-2024-09-10", -440, -90, 120, 485, "embed-2025-08-20", 8192, "0.02", "0", 40),
            ("embed-2025-08-20", -97, None, None, None, None, 8192, "0.02", "0", 35),
        ],
        "aliases": [("v1-embed", ["embed-2024-09-10", "embed-2025-08-20"])],
    },
    "code": {
        "name": "Code",
        "team": "Code Models Team",
        "email": "code-team@vendor.example",
        "snapshots": [
            ("code-2025-01-20", -310, -30, 150, 515, "code-2025-10-05", 64000, "1.2", "4.0", 800),
            ("code-2025-10-05", -51, None, None, None, None, 128000, "1.0", "3.5", 650),
        ],
        "aliases": [("v1-code", ["code-2025-01-20", "code-2025-10-05"])],
    },
}


CHANGELOG = [
    (
        "chat-2024-11-15",
        ChangelogKind.BEHAVIOUR,
        "Shorter default answers",
        "Default max_tokens lowered to 1024.",
    ),
    ("chat-2025-06-01", ChangelogKind.BREAKING, "New tokenizer", "Token counts differ by up to 12 %."),
    (
        "chat-2025-06-01",
        ChangelogKind.SAFETY,
        "Refusal policy v3",
        "Medical dosage questions answered with sources.",
    ),
    (
        "chat-2025-09-29",
        ChangelogKind.COST,
        "Price cut",
        "Input price down from 0.60 to 0.50 per million tokens.",
    ),
    (
        "chat-2025-09-29",
        ChangelogKind.FIX,
        "JSON mode fix",
        "Trailing commas no longer emitted in JSON mode.",
    ),
    ("embed-2025-08-20", ChangelogKind.BEHAVIOUR, "Normalised vectors", "Vectors are L2-normalised."),
    ("code-2025-10-05", ChangelogKind.BREAKING, "Tool-call format", "Tool calls use the v2 schema."),
]


@transaction.atomic
def seed_catalog() -> list[str]:
    for slug, spec in CATALOG.items():
        family, _ = ModelFamily.objects.get_or_create(
            slug=slug,
            defaults={"name": spec["name"], "owning_team": spec["team"], "owning_team_email": spec["email"]},
        )
        for name, released, deprecated, retires, retention, _repl, ctx, p_in, p_out, latency in spec[
            "snapshots"
        ]:
            if Snapshot.objects.filter(name=name).exists():
                continue
            services.snapshot_create(
                family=family,
                name=name,
                digest=_digest(name),
                config={
                    "context_window": ctx,
                    "default_sampling": {"temperature": 0.7, "top_p": 0.95},
                    "prompt_template_digest": _digest(f"template:{name}")[:16],
                    "tokenizer": "tok-v3" if name >= f"{slug}-2025-06" else "tok-v2",
                },
                released_at=_named_day(name, released),
                deprecated_at=_day(deprecated) if deprecated is not None else None,
                retires_at=_day(retires) if retires is not None else None,
                retention_until=_day(retention) if retention is not None else None,
                price_input_per_mtok=p_in,
                price_output_per_mtok=p_out,
                latency_p50_ms=latency,
                publish=True,
            )
        for name, *_rest in spec["snapshots"]:
            replacement = _rest[4]
            if replacement:
                Snapshot.objects.filter(name=name, replacement__isnull=True).update(
                    replacement=Snapshot.objects.get(name=replacement)
                )
        for alias_name, history in spec["aliases"]:
            if Alias.objects.filter(name=alias_name).exists():
                continue
            first = Snapshot.objects.get(name=history[0])
            alias = services.alias_create(
                name=alias_name, family=family, target=first, at=first.released_at + dt.timedelta(days=1)
            )
            for step in history[1:]:
                snapshot = Snapshot.objects.get(name=step)
                services.alias_move(
                    alias=alias,
                    to_snapshot=snapshot,
                    reason=f"{step} became the default",
                    at=snapshot.released_at + dt.timedelta(days=7),
                )
    for snapshot_name, kind, title, body in CHANGELOG:
        snapshot = Snapshot.objects.get(name=snapshot_name)
        ChangelogEntry.objects.get_or_create(
            snapshot=snapshot,
            title=title,
            defaults={"kind": kind, "body": body, "published_at": snapshot.released_at},
        )
    return []

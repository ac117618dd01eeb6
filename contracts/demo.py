"""Demo data for the embedded default: idempotent, every write through the services.

Each seed function returns lines to print; `seed_demo` runs them in order. Dates are fixed relative to
the first run (stored on the rows), so a second run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from contracts import services
from contracts.models import (
    Alias,
    ApiKey,
    ChangelogEntry,
    ChangelogKind,
    Membership,
    ModelFamily,
    Organization,
    Pin,
    Role,
    Snapshot,
    UpgradePolicy,
)

DEMO_PASSWORD = "demo-pass-2025"
DEMO_ORGS = [
    ("acme", "Acme Health"),
    ("globex", "Globex Finance"),
    ("initech", "Initech Legal"),
]
DEMO_KEYS = {slug: f"vcp_demo{slug}{'0' * (32 - len(slug))}" for slug, _ in DEMO_ORGS}
DEMO_STAFF = ("staff", "staff-pass-2025")


def _digest(name: str) -> str:
    return hashlib.sha256(f"artifact:{name}".encode()).hexdigest()


def _day(days: int) -> dt.datetime:
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    return now + dt.timedelta(days=days)


# name, released (days from now), deprecated, retires, retention, replacement, config, price in/out, latency
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
            ("chat-2026-02-01", 45, None, None, None, None, 256000, "0.5", "1.5", 400),
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
    ("chat-2024-11-15", ChangelogKind.BEHAVIOUR, "Shorter default answers", "Default max_tokens lowered to 1024."),
    ("chat-2025-06-01", ChangelogKind.BREAKING, "New tokenizer", "Token counts differ by up to 12 %."),
    ("chat-2025-06-01", ChangelogKind.SAFETY, "Refusal policy v3", "Medical dosage questions answered with sources."),
    ("chat-2025-09-29", ChangelogKind.COST, "Price cut", "Input price down from 0.60 to 0.50 per million tokens."),
    ("chat-2025-09-29", ChangelogKind.FIX, "JSON mode fix", "Trailing commas no longer emitted in JSON mode."),
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
        for name, released, deprecated, retires, retention, _repl, ctx, p_in, p_out, latency in spec["snapshots"]:
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
                released_at=_day(released),
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
            snapshot=snapshot, title=title, defaults={"kind": kind, "body": body, "published_at": snapshot.released_at}
        )
    return []


# org slug -> [(alias, snapshot, policy)]
PINS = {
    "acme": [
        ("v1-chat", "chat-2025-06-01", UpgradePolicy.MANUAL),
        ("chat-latest", "chat-2025-09-29", UpgradePolicy.FOLLOW),
        ("v1-embed", "embed-2024-09-10", UpgradePolicy.ON_RETIREMENT),
        ("v1-code", "code-2025-01-20", UpgradePolicy.MANUAL),
    ],
    "globex": [
        ("v1-chat", "chat-2024-11-15", UpgradePolicy.ON_RETIREMENT),
        ("v1-embed", "embed-2025-08-20", UpgradePolicy.FOLLOW),
    ],
    "initech": [
        ("v1-chat", "chat-2025-09-29", UpgradePolicy.FOLLOW),
        ("v1-code", "code-2025-10-05", UpgradePolicy.MANUAL),
    ],
}


@transaction.atomic
def seed_organizations() -> list[str]:
    user_model = get_user_model()
    lines = []
    staff, created = user_model.objects.get_or_create(
        username=DEMO_STAFF[0], defaults={"email": "staff@vendor.example", "is_staff": True, "is_superuser": True}
    )
    if created:
        staff.set_password(DEMO_STAFF[1])
        staff.save(update_fields=["password"])
    lines.append(f"login: {DEMO_STAFF[0]} {DEMO_STAFF[1]} org=- role=staff")
    for slug, name in DEMO_ORGS:
        org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": name})
        for role in (Role.ADMIN, Role.MEMBER, Role.LEGAL):
            username = f"{slug}-{role}"
            user, created = user_model.objects.get_or_create(
                username=username, defaults={"email": f"{username}@{slug}.example"}
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            Membership.objects.get_or_create(user=user, organization=org, defaults={"role": role})
            lines.append(f"login: {username} {DEMO_PASSWORD} org={slug} role={role}")
        for alias_name, snapshot_name, policy in PINS.get(slug, []):
            alias = Alias.objects.get(name=alias_name)
            if Pin.objects.filter(organization=org, alias=alias).exists():
                continue
            snapshot = Snapshot.objects.get(name=snapshot_name)
            services.pin_set(
                organization=org,
                alias=alias,
                snapshot=snapshot,
                policy=policy,
                reason="onboarding",
                at=max(snapshot.released_at, alias.created_at) + dt.timedelta(days=2),
            )
    # One user in two organisations, to show the organisation switcher.
    consultant, created = user_model.objects.get_or_create(
        username="consultant", defaults={"email": "consultant@audit.example"}
    )
    if created:
        consultant.set_password(DEMO_PASSWORD)
        consultant.save(update_fields=["password"])
    for slug, role in (("acme", Role.LEGAL), ("globex", Role.ADMIN)):
        Membership.objects.get_or_create(
            user=consultant, organization=Organization.objects.get(slug=slug), defaults={"role": role}
        )
        lines.append(f"login: consultant {DEMO_PASSWORD} org={slug} role={role}")
    return lines


@transaction.atomic
def seed_api_keys() -> list[str]:
    lines = []
    for slug, raw in DEMO_KEYS.items():
        org = Organization.objects.get(slug=slug)
        if not ApiKey.objects.filter(key_hash=ApiKey.hash_key(raw)).exists():
            services.api_key_create(organization=org, name="Demo key", raw_key=raw)
        lines.append(f"api-key: {raw} org={slug}")
    return lines


SEEDERS = [seed_catalog, seed_organizations, seed_api_keys]

from contracts.consent.demo import seed_terms_and_migrations  # noqa: E402

SEEDERS.append(seed_terms_and_migrations)

from contracts.diffs.demo import seed_evals  # noqa: E402

SEEDERS.append(seed_evals)

from contracts.billing_demo import seed_billing  # noqa: E402

SEEDERS.append(seed_billing)

from contracts.bugs.demo import seed_bug_reports  # noqa: E402

SEEDERS.append(seed_bug_reports)

from contracts.ledger.checkpoints import seed_checkpoints  # noqa: E402

SEEDERS.append(seed_checkpoints)

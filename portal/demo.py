"""The demo data of every area, in the order each needs the one before (the `seed_demo` command).

Each seeder is idempotent and returns the lines to print (logins, keys)."""

from __future__ import annotations

from contracts.billing.demo import seed_billing
from contracts.bugs.demo import seed_bug_reports
from contracts.catalog.demo import seed_catalog
from contracts.consent.demo import seed_terms_and_migrations
from contracts.evals.demo import seed_evals
from contracts.gateway.demo import seed_gateway
from contracts.identity.demo import seed_scim_tokens
from contracts.ledger.demo import seed_checkpoints
from contracts.pins.demo import seed_pins
from contracts.renewal.demo import seed_eval_runner
from contracts.tenancy.demo import seed_api_keys, seed_organizations
from notifications.demo import seed_notifications

SEEDERS = [
    seed_catalog,
    seed_organizations,
    seed_pins,
    seed_api_keys,
    seed_scim_tokens,
    seed_terms_and_migrations,
    seed_evals,
    seed_billing,
    seed_bug_reports,
    seed_checkpoints,
    seed_gateway,
    seed_notifications,
    seed_eval_runner,
]

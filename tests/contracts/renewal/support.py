"""The world of renewal and audit (the `renewal` fixture of tests/conftest.py): an organisation with a
procurement baseline, a consented move, a forced move after notices, and two registered eval runners."""

from __future__ import annotations

from dataclasses import dataclass

from contracts.consent import services as consent
from contracts.evals import services as evals
from contracts.models import EvalResult, EvalRunner, EvalSuite, Migration, Snapshot
from contracts.renewal import services
from tests import factories as f
from tests.contracts.ledger_helpers import accept, decider, make_terms


@dataclass
class Renewal:
    world: object
    suite: EvalSuite
    baseline_result: EvalResult
    newest: Snapshot
    consented: Migration
    forced: Migration
    runner: EvalRunner
    runner_key: str
    other_runner: EvalRunner
    other_runner_key: str


BASELINE_SCORES = {
    "accuracy": {"score": 0.82, "subsets": {"cardiology": 0.8, "oncology": 0.84}},
    "citation_rate": {"score": 0.81, "subsets": {}},
}


def make_renewal(world) -> Renewal:
    """acme: baseline on chat-2025-01-01 (marked now); consented to chat-2025-06-01 (day -60);
    forced to chat-2025-09-01 at its retirement (day -9) after two notices, one acknowledged."""
    from notifications.models import Notice

    terms = make_terms("2025-01", effective_at=f.days(-300))
    accept(world.org, terms, world.admin)
    suite = EvalSuite.objects.create(
        slug="clinical-qa", name="Clinical QA", owner=world.org,
        tolerances={"accuracy": 0.01, "citation_rate": 0.02},
    )  # fmt: skip
    baseline_result = evals.eval_result_upload(
        suite=suite.slug, snapshot=world.old.name, scores=BASELINE_SCORES
    )
    evals.baseline_mark(org=world.org, result=baseline_result, acting_user=world.admin)
    newest = f.SnapshotFactory(
        family=world.family, name="chat-2025-09-01", released_at=f.days(-55)
    )  # released before it is proposed (#13)
    consented = consent.migration_propose(pin=world.pin, to_snapshot=world.current, at=f.days(-70))
    consent.migration_consent(migration=consented, decider=decider(world.admin), at=f.days(-60))
    Snapshot.objects.filter(pk=world.current.pk).update(deprecated_at=f.days(-100), retires_at=f.days(-10))
    world.pin.refresh_from_db()
    forced = consent.migration_propose(pin=world.pin, to_snapshot=newest, at=f.days(-50))
    forced.refresh_from_db()
    for milestone, day, acked in (("deprecation-announced", -50, True), ("t-30", -40, False)):
        Notice.objects.create(
            organization=world.org, snapshot=world.current, migration=forced, milestone=milestone,
            channel="email", status="sent", due_at=f.days(day), sent_at=f.days(day),
            sent_to=[world.admin.email], subject=f"{milestone} for {world.current.name}",
            acknowledged_at=f.days(day + 1) if acked else None,
            acknowledged_by_email=world.legal.email if acked else "",
        )  # fmt: skip
    assert consent.migration_force(migration=forced, at=f.days(-9)) is not None
    world.pin.refresh_from_db()
    runner, key = services.eval_runner_create(name="runner-a")
    other, other_key = services.eval_runner_create(name="runner-b")
    return Renewal(world, suite, baseline_result, newest, consented, forced, runner, key, other, other_key)


def good_scores(accuracy: float = 0.78, citation: float = 0.83) -> dict:
    return {
        "accuracy": {
            "score": accuracy,
            "subsets": {"cardiology": accuracy - 0.01, "oncology": accuracy + 0.01},
        },
        "citation_rate": {"score": citation},
    }

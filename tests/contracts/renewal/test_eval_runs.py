"""Eval refresh runs: asking, claiming exactly once, leases that run out, results only from the holder."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contracts.errors import ApplicationError, Conflict, Forbidden, NotFound
from contracts.models import EvalResult, EvalRun, EvalRunState
from contracts.renewal import services
from tests import factories as f
from tests.contracts.renewal.support import good_scores

pytestmark = pytest.mark.django_db


def test_an_admin_asks_for_a_refresh_on_the_snapshot_served_now(renewal):
    w = renewal.world
    run, created = services.eval_run_request(
        org=w.org, suite="clinical-qa", alias="v1-chat", acting_user=w.admin
    )
    assert created and run.state == EvalRunState.QUEUED
    assert (run.snapshot, run.alias_name, run.requested_by) == (renewal.newest, "v1-chat", w.admin)
    again, created_again = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat")
    assert again.pk == run.pk and not created_again


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"suite": "nope", "alias": "v1-chat"}, "suite"),
        ({"suite": "clinical-qa", "alias": "v9-other"}, "alias"),
        ({"suite": "clinical-qa"}, "alias"),
        ({"suite": "clinical-qa", "alias": "v1-chat", "snapshot": "chat-2025-01-01"}, "alias"),
        ({"suite": "clinical-qa", "snapshot": "chat-2025-01-01"}, "snapshot"),  # neither served nor proposed
    ],
)
def test_a_bad_refresh_request_names_the_field_and_stores_nothing(renewal, kwargs, field):
    with pytest.raises(ApplicationError) as caught:
        services.eval_run_request(org=renewal.world.org, **kwargs)
    assert field in caught.value.fields and caught.value.status_code == 400
    assert EvalRun.objects.count() == 0


def test_a_suite_without_a_baseline_or_of_another_organisation_is_refused(renewal):
    from contracts.models import EvalSuite

    EvalSuite.objects.create(slug="globex-only", name="Globex", owner=renewal.world.other_org)
    EvalSuite.objects.create(slug="public-no-baseline", name="Public")
    for suite in ("globex-only", "public-no-baseline"):
        with pytest.raises(ApplicationError) as caught:
            services.eval_run_request(org=renewal.world.org, suite=suite, alias="v1-chat")
        assert "suite" in caught.value.fields
    assert EvalRun.objects.count() == 0


def test_another_organisations_migration_is_not_found(renewal):
    from contracts.consent.services import migration_propose
    from contracts.models import Pin

    theirs = migration_propose(
        pin=Pin.objects.get(organization=renewal.world.other_org), to_snapshot=renewal.newest
    )
    with pytest.raises(NotFound):
        services.eval_run_request(org=renewal.world.org, suite="clinical-qa", migration_id=theirs.pk)
    assert EvalRun.objects.count() == 0


def test_a_claim_is_given_exactly_once_and_oldest_first(renewal):
    w = renewal.world
    first, _ = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat", at=f.days(-1))
    claimed = services.eval_run_claim(runner=renewal.runner)
    assert claimed.pk == first.pk and claimed.state == EvalRunState.CLAIMED and claimed.attempts == 1
    assert claimed.runner == renewal.runner and len(claimed.lease_token) == 32
    assert services.eval_run_claim(runner=renewal.other_runner) is None
    assert services.eval_run_claim(runner=renewal.runner) is None


def test_results_from_the_holder_land_and_the_customer_is_told_once(
    renewal, django_capture_on_commit_callbacks
):
    from notifications.models import Notice

    w = renewal.world
    run, _ = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat")
    claim = services.eval_run_claim(runner=renewal.runner)
    services.eval_run_progress(
        runner=renewal.runner, run_id=run.pk, lease_token=claim.lease_token, progress=40
    )
    with django_capture_on_commit_callbacks(execute=True):
        done = services.eval_run_complete(
            runner=renewal.runner, run_id=run.pk, lease_token=claim.lease_token, suite="clinical-qa",
            snapshot=renewal.newest.name, scores=good_scores(accuracy=0.78),
        )  # fmt: skip
    assert done.state == EvalRunState.DONE and done.progress == 100
    assert done.scores["accuracy"]["score"] == 0.78
    # The snapshot had no catalogue result for this suite: the refresh became it.
    assert EvalResult.objects.get(suite=renewal.suite, snapshot=renewal.newest).pk == done.result_id
    told = Notice.objects.get(organization=w.org, dedupe_key=f"adhoc:eval-run:{run.pk}", channel="email")
    assert "accuracy fell from 0.82 to 0.78" in told.body and "regression" in told.subject
    assert Notice.objects.filter(organization=w.org, kind="eval.refreshed", channel="webhook").count() == 1


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"suite": "mmlu"}, 400, "suite"),
        ({"snapshot": "chat-2025-01-01"}, 400, "snapshot"),
        (
            {"scores": {"accuracy": {"score": 0.8}, "citation_rate": {"score": 0.8}, "bleu": {"score": 1}}},
            400,
            "scores.bleu",
        ),
        (
            {"scores": {"accuracy": {"score": "high"}, "citation_rate": {"score": 0.8}}},
            400,
            "scores.accuracy.score",
        ),
        ({"scores": {"accuracy": {"score": 0.8}}}, 400, "scores.citation_rate"),
        ({"lease_token": "0" * 32}, 409, "lease"),
    ],
)
def test_bad_results_are_refused_and_store_nothing(renewal, change, status, field):
    w = renewal.world
    run, _ = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat")
    claim = services.eval_run_claim(runner=renewal.runner)
    payload = {
        "runner": renewal.runner, "run_id": run.pk, "lease_token": claim.lease_token, "suite": "clinical-qa",
        "snapshot": renewal.newest.name, "scores": good_scores(),
    }  # fmt: skip
    payload.update(change)
    with pytest.raises(ApplicationError) as caught:
        services.eval_run_complete(**payload)
    assert caught.value.status_code == status and field in caught.value.fields
    run.refresh_from_db()
    assert run.state == EvalRunState.CLAIMED and run.scores is None
    assert not EvalResult.objects.filter(snapshot=renewal.newest).exists()


def test_a_result_for_a_run_another_runner_holds_is_refused(renewal):
    w = renewal.world
    run, _ = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat")
    claim = services.eval_run_claim(runner=renewal.runner)
    with pytest.raises(Forbidden) as caught:
        services.eval_run_complete(
            runner=renewal.other_runner, run_id=run.pk, lease_token=claim.lease_token, suite="clinical-qa",
            snapshot=renewal.newest.name, scores=good_scores(),
        )  # fmt: skip
    assert caught.value.fields == {"run": "claimed by another runner"}
    run.refresh_from_db()
    assert run.state == EvalRunState.CLAIMED and run.scores is None


def test_a_run_whose_lease_runs_out_is_released_retried_and_the_late_result_refused(renewal, settings):
    settings.EVAL_RUN_MAX_ATTEMPTS = 2
    w = renewal.world
    now = timezone.now()
    run, _ = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat", at=now)
    first = services.eval_run_claim(runner=renewal.runner, at=now)
    later = now + dt.timedelta(seconds=settings.EVAL_RUN_LEASE_SECONDS + 1)
    # The next claim (by another runner) releases the expired lease first, then takes the run again.
    second = services.eval_run_claim(runner=renewal.other_runner, at=later)
    assert second.pk == run.pk and second.attempts == 2 and second.runner == renewal.other_runner
    with pytest.raises(Forbidden):
        services.eval_run_complete(
            runner=renewal.runner, run_id=run.pk, lease_token=first.lease_token, suite="clinical-qa",
            snapshot=renewal.newest.name, scores=good_scores(), at=later,
        )  # fmt: skip
    # The second lease runs out too: the run fails after EVAL_RUN_MAX_ATTEMPTS claims, and says why.
    assert (
        services.eval_runs_release_expired(
            at=later + dt.timedelta(seconds=settings.EVAL_RUN_LEASE_SECONDS + 1)
        )
        == 1
    )
    run.refresh_from_db()
    assert run.state == EvalRunState.FAILED and "2 claims" in run.error
    assert services.eval_run_claim(runner=renewal.runner, at=later) is None


def test_a_stale_lease_of_the_same_runner_is_a_conflict(renewal, settings):
    w = renewal.world
    now = timezone.now()
    run, _ = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat", at=now)
    first = services.eval_run_claim(runner=renewal.runner, at=now)
    later = now + dt.timedelta(seconds=settings.EVAL_RUN_LEASE_SECONDS + 1)
    with pytest.raises(Conflict):
        services.eval_run_progress(
            runner=renewal.runner, run_id=run.pk, lease_token=first.lease_token, progress=10, at=later
        )
    again = services.eval_run_claim(runner=renewal.runner, at=later)
    with pytest.raises(Conflict):
        services.eval_run_complete(
            runner=renewal.runner, run_id=run.pk, lease_token=first.lease_token, suite="clinical-qa",
            snapshot=renewal.newest.name, scores=good_scores(), at=later,
        )  # fmt: skip
    services.eval_run_complete(
        runner=renewal.runner, run_id=run.pk, lease_token=again.lease_token, suite="clinical-qa",
        snapshot=renewal.newest.name, scores=good_scores(), at=later,
    )  # fmt: skip


def test_a_refresh_can_target_a_proposed_snapshot_through_its_migration(renewal):
    from contracts.consent.services import migration_propose
    from contracts.models import Pin

    w = renewal.world
    extra = f.SnapshotFactory(family=w.family, name="chat-2025-12-01", released_at=f.days(-5))
    migration = migration_propose(pin=Pin.objects.get(pk=w.pin.pk), to_snapshot=extra)
    run, _ = services.eval_run_request(org=w.org, suite="clinical-qa", migration_id=migration.pk)
    assert (run.snapshot, run.migration) == (extra, migration)
    by_name, created = services.eval_run_request(org=w.org, suite="clinical-qa", snapshot=extra.name)
    assert by_name.pk == run.pk and not created


def test_revoking_a_runner_requeues_what_it_holds_and_its_key_stops_working(renewal, client):
    w = renewal.world
    run, _ = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat")
    services.eval_run_claim(runner=renewal.runner)
    assert services.eval_runners_revoke(runners=[renewal.runner]) == 1
    run.refresh_from_db()
    assert (run.state, run.runner) == (EvalRunState.QUEUED, None)
    response = client.get("/api/v1/eval-runs/claim/", HTTP_AUTHORIZATION=f"Bearer {renewal.runner_key}")
    assert response.status_code == 401
    assert services.eval_run_claim(runner=renewal.other_runner).pk == run.pk

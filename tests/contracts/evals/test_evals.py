"""Eval uploads (validated, atomic), golden samples, procurement baselines and their deltas."""

from __future__ import annotations

import pytest

from contracts.errors import ApplicationError, Conflict, NotFound
from contracts.evals import selectors as evals_selectors
from contracts.evals import services as evals_services
from contracts.models import (
    ApiKeyScope,
    ConsentRecord,
    EvalResult,
    GoldenSample,
    LedgerAction,
    ProcurementBaseline,
)
from contracts.tenancy import services
from tests import factories as f
from tests.contracts.diff_support import make_result, make_suite, scores

pytestmark = pytest.mark.django_db


@pytest.fixture
def suite(world):
    return make_suite("qa", tolerances={"accuracy": 0.02, "latency": 50}, lower_is_better=["latency"])


@pytest.fixture
def staff_key(world):
    _key, raw = services.api_key_create(org=None, scope=ApiKeyScope.STAFF, name="staff")
    return raw


def test_upload_stores_scores_per_metric_and_subset(world, suite):
    result = evals_services.eval_result_upload(
        suite="qa",
        snapshot=world.current.name,
        scores=scores(accuracy=(0.8, {"hard": 0.6}), latency=420),
        cases=[{"id": "c1", "pass": True}],
    )
    assert result.scores == {
        "accuracy": {"score": 0.8, "subsets": {"hard": 0.6}},
        "latency": {"score": 420.0, "subsets": {}},
    }
    assert result.cases == [{"id": "c1", "pass": True}]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"scores": scores(accuracy=0.8)}, "scores.latency"),
        ({"scores": {"accuracy": {"score": "high"}, "latency": {"score": 1}}}, "scores.accuracy.score"),
        ({"scores": {"accuracy": {"score": True}, "latency": {"score": 1}}}, "scores.accuracy.score"),
        (
            {"scores": {"accuracy": {"score": 0.8, "subsets": {"hard": "x"}}, "latency": {"score": 1}}},
            "scores.accuracy.subsets.hard",
        ),
        ({"scores": {"accuracy": {"subsets": {}}, "latency": {"score": 1}}}, "scores.accuracy.score"),
        ({"scores": scores(accuracy=0.8, latency=1, bleu=0.3)}, "scores.bleu"),
        ({"scores": []}, "scores"),
        ({"snapshot": "chat-1999-01-01"}, "snapshot"),
        ({"suite": "no-such-suite"}, "suite"),
        ({"cases": "all passed"}, "cases"),
    ],
)
def test_a_bad_upload_is_refused_naming_the_field_and_stores_nothing(world, suite, kwargs, field):
    upload = {
        "suite": "qa",
        "snapshot": world.current.name,
        "scores": scores(accuracy=0.8, latency=400),
        **kwargs,
    }
    with pytest.raises(ApplicationError) as refused:
        evals_services.eval_result_upload(**upload)
    assert refused.value.status_code == 400
    assert field in refused.value.fields
    assert EvalResult.objects.count() == 0


def test_a_second_upload_for_the_same_suite_and_snapshot_is_a_conflict(world, suite):
    make_result(suite, world.current, accuracy=0.8, latency=400)
    with pytest.raises(Conflict):
        make_result(suite, world.current, accuracy=0.9, latency=300)
    assert EvalResult.objects.get().scores["accuracy"]["score"] == 0.8


def test_golden_sample_upload_is_all_or_nothing(world):
    with pytest.raises(ApplicationError) as refused:
        evals_services.golden_samples_upload(
            snapshot=world.current,
            samples=[
                {"prompt_id": "ok", "output": "fine"},
                {"prompt_id": "ok", "output": "dup"},
                {"output": 3},
            ],
        )
    assert {"samples[1].prompt_id", "samples[2].prompt_id", "samples[2].output"} <= set(refused.value.fields)
    assert GoldenSample.objects.count() == 0
    evals_services.golden_samples_upload(
        snapshot=world.current, samples=[{"prompt_id": "ok", "output": "v1"}]
    )
    evals_services.golden_samples_upload(
        snapshot=world.current, samples=[{"prompt_id": "ok", "output": "v2"}]
    )
    assert list(GoldenSample.objects.values_list("output", flat=True)) == ["v2"]


def test_marking_a_baseline_writes_a_ledger_record_naming_suite_result_and_snapshot(world, suite):
    result = make_result(suite, world.old, accuracy=0.8, latency=400)
    baseline = evals_services.baseline_mark(
        org=world.org, result=result, acting_user=world.admin, ip="10.0.0.1"
    )
    record = ConsentRecord.objects.get(organization=world.org, action=LedgerAction.BASELINE)
    assert record.details["suite"] == "qa" and record.details["result_id"] == result.pk
    assert record.details["snapshot"] == world.old.name == record.to_snapshot
    assert record.actor_email == world.admin.email and baseline.marked_by == world.admin
    newer = make_result(suite, world.current, accuracy=0.81, latency=390)
    evals_services.baseline_mark(org=world.org, result=newer, acting_user=world.admin)
    assert ProcurementBaseline.objects.get(organization=world.org).result == newer
    assert ConsentRecord.objects.filter(action=LedgerAction.BASELINE).count() == 2


def test_a_suite_of_another_organisation_cannot_be_a_baseline(world):
    foreign = make_suite("globex-only", owner=world.other_org)
    result = make_result(foreign, world.old, accuracy=0.8)
    with pytest.raises(NotFound):
        evals_services.baseline_mark(org=world.org, result=result, acting_user=world.admin)
    with pytest.raises(NotFound):
        evals_selectors.eval_result_get(org=world.org, result_id=result.pk)
    assert not ProcurementBaseline.objects.exists() and not ConsentRecord.objects.exists()


def test_served_snapshot_below_baseline_beyond_tolerance_is_flagged(world, suite):
    base = make_result(suite, world.old, accuracy=0.80, latency=400)
    make_result(suite, world.current, accuracy=0.77, latency=420)
    evals_services.baseline_mark(org=world.org, result=base, acting_user=world.admin)
    (on_old,) = evals_selectors.baseline_deltas(org=world.org)  # acme is served world.old
    assert on_old.meets_baseline and on_old.is_baseline_snapshot
    (on_current,) = evals_selectors.baseline_deltas(org=world.org, snapshots=[world.current])
    assert not on_current.meets_baseline
    assert [m["metric"] for m in on_current.regressions] == ["accuracy"]  # latency +20 is within 50


def test_an_unmeasured_snapshot_is_not_shown_to_meet_the_baseline(world, suite):
    base = make_result(suite, world.old, accuracy=0.80, latency=400)
    evals_services.baseline_mark(org=world.org, result=base, acting_user=world.admin)
    newest = f.SnapshotFactory(family=world.family, name="chat-2025-12-01")
    (delta,) = evals_selectors.baseline_deltas(org=world.org, snapshots=[newest])
    assert not delta.measured and not delta.meets_baseline


# ---------------------------------------------------------------------------------------------
# API
# ---------------------------------------------------------------------------------------------


def test_staff_key_uploads_an_eval_result(api, world, suite, staff_key):
    body = {"suite": "qa", "snapshot": world.current.name, "scores": scores(accuracy=0.8, latency=400)}
    response = api.post("/api/v1/evals/", body, key=staff_key)
    assert response.status_code == 201, response.content
    assert response.json()["snapshot"] == world.current.name


def test_an_organisation_key_cannot_upload_evals(api, world, suite):
    body = {"suite": "qa", "snapshot": world.current.name, "scores": scores(accuracy=0.8, latency=400)}
    assert api.post("/api/v1/evals/", body, key=world.key).status_code == 403
    assert api.post("/api/v1/evals/", body).status_code == 401
    assert EvalResult.objects.count() == 0


def test_api_upload_with_an_unknown_snapshot_answers_400_naming_it(api, world, suite, staff_key):
    body = {"suite": "qa", "snapshot": "chat-1999-01-01", "scores": {"accuracy": {"score": "x"}}}
    response = api.post("/api/v1/evals/", body, key=staff_key)
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert "snapshot" in fields and "scores.accuracy.score" in fields and "scores.latency" in fields
    assert EvalResult.objects.count() == 0


def test_staff_uploads_golden_samples_for_a_snapshot(api, world, staff_key):
    url = f"/api/v1/snapshots/{world.current.name}/golden-samples/"
    body = {"samples": [{"prompt_id": "p1", "prompt": "Hi", "output": "Hello"}]}
    assert api.post(url, body, key=world.key).status_code == 403
    response = api.post(url, body, key=staff_key)
    assert response.status_code == 201 and response.json() == {"snapshot": world.current.name, "stored": 1}
    assert api.post("/api/v1/snapshots/nope/golden-samples/", body, key=staff_key).status_code == 404
    assert api.post(url, {"samples": [{"output": "no id"}]}, key=staff_key).status_code == 400


def test_org_admin_marks_a_baseline_over_the_api_and_members_may_not(api, client, world, suite):
    result = make_result(suite, world.old, accuracy=0.8, latency=400)
    url = f"/api/v1/evals/{result.pk}/baseline/"
    client.force_login(world.member)
    assert client.post(url, content_type="application/json").status_code == 403
    response = api.post(url, key=world.key)
    assert response.status_code == 200
    assert response.json()["snapshot"] == world.old.name and response.json()["suite"] == "qa"
    assert ConsentRecord.objects.filter(organization=world.org, action=LedgerAction.BASELINE).count() == 1


def test_a_foreign_key_gets_404_for_another_organisations_eval_result(api, world):
    own = make_suite("acme-own", owner=world.org)
    result = make_result(own, world.old, accuracy=0.8)
    assert api.post(f"/api/v1/evals/{result.pk}/baseline/", key=world.other_key).status_code == 404
    assert api.post("/api/v1/evals/999999/baseline/", key=world.key).status_code == 404


def test_staff_upload_through_the_admin_uses_the_validated_upload(client, world, suite):
    staff = f.UserFactory(username="vendor-staff", is_staff=True, is_superuser=True)
    client.force_login(staff)
    url = "/admin/contracts/evalresult/add/"
    form = {
        "suite": suite.pk,
        "snapshot": world.current.pk,
        "scores": '{"accuracy": {"score": 0.8}}',
        "cases": "null",
    }
    response = client.post(url, form, follow=True)
    assert "scores.latency" in response.content.decode() and EvalResult.objects.count() == 0
    form["scores"] = '{"accuracy": {"score": 0.8}, "latency": {"score": 400}}'
    client.post(url, form, follow=True)
    assert EvalResult.objects.get().uploaded_by == staff
    assert client.get("/admin/contracts/procurementbaseline/").status_code == 200
    assert client.get("/admin/contracts/goldensample/add/").status_code == 200

"""The REST endpoints of renewal and audit: wiring, roles, the envelope, and nothing stored on refusal."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from contracts.models import AuditPack, EvalRun, EvalRunState
from contracts.renewal import services
from tests import factories as f
from tests.contracts.renewal.support import good_scores


def runner_api(client, key):
    class Runner:
        def get(self, url):
            return client.get(url, HTTP_AUTHORIZATION=f"Bearer {key}")

        def post(self, url, data):
            return client.post(
                url, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
            )

    return Runner()


@pytest.mark.django_db
def test_an_admin_key_asks_and_follows_a_refresh(renewal, api):
    response = api.post(
        "/api/v1/eval-runs/", {"suite": "clinical-qa", "alias": "v1-chat"}, key=renewal.world.key
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["suite"], body["snapshot"], body["state"], body["progress"]) == (
        "clinical-qa", renewal.newest.name, "queued", 0,
    )  # fmt: skip
    again = api.post(
        "/api/v1/eval-runs/", {"suite": "clinical-qa", "alias": "v1-chat"}, key=renewal.world.key
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert api.get(body["status_url"], key=renewal.world.key).json()["state"] == "queued"
    assert api.get(body["status_url"], key=renewal.world.other_key).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"suite": "unknown-suite", "alias": "v1-chat"}, "suite"),
        ({"suite": "clinical-qa", "alias": "v9-nope"}, "alias"),
        ({"suite": "clinical-qa", "snapshot": "chat-2025-01-01"}, "snapshot"),
        ({"alias": "v1-chat"}, "suite"),
        ({"suite": "clinical-qa", "migration": 0}, "migration"),
    ],
)
def test_a_bad_refresh_request_answers_400_in_the_envelope_and_stores_nothing(renewal, api, payload, field):
    response = api.post("/api/v1/eval-runs/", payload, key=renewal.world.key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert EvalRun.objects.count() == 0


@pytest.mark.django_db
def test_members_and_legal_cannot_ask_for_a_refresh(renewal, client):
    for user in (renewal.world.member, renewal.world.legal):
        client.force_login(user)
        response = client.post(
            "/api/v1/eval-runs/",
            {"suite": "clinical-qa", "alias": "v1-chat"},
            content_type="application/json",
        )
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert EvalRun.objects.count() == 0


@pytest.mark.django_db
def test_a_runner_claims_reports_and_posts_over_the_api(renewal, api, client):
    asked = api.post(
        "/api/v1/eval-runs/", {"suite": "clinical-qa", "alias": "v1-chat"}, key=renewal.world.key
    ).json()
    runner = runner_api(client, renewal.runner_key)
    claim = runner.get("/api/v1/eval-runs/claim/")
    assert claim.status_code == 200
    claim = claim.json()
    assert claim["id"] == asked["id"] and claim["subsets"]["accuracy"] == ["cardiology", "oncology"]
    assert runner.get("/api/v1/eval-runs/claim/").status_code == 204
    progress = runner.post(claim["progress_url"], {"lease": claim["lease"], "progress": 50})
    assert progress.status_code == 200 and progress.json()["progress"] == 50
    assert api.get(asked["status_url"], key=renewal.world.key).json()["progress"] == 50
    bad = runner.post(
        claim["results_url"],
        {
            "lease": claim["lease"],
            "suite": "clinical-qa",
            "snapshot": claim["snapshot"],
            "scores": {**good_scores(), "bleu": {"score": 0.1}},
        },
    )
    assert bad.status_code == 400 and "scores.bleu" in bad.json()["error"]["fields"]
    done = runner.post(
        claim["results_url"],
        {
            "lease": claim["lease"],
            "suite": "clinical-qa",
            "snapshot": claim["snapshot"],
            "scores": good_scores(accuracy=0.7),
        },
    )
    assert done.status_code == 200 and done.json() == {
        "id": claim["id"],
        "state": "done",
        "regressions": ["accuracy"],
    }
    shown = api.get(asked["status_url"], key=renewal.world.key).json()
    assert (
        shown["state"] == "done"
        and shown["deltas"][0]["metric"] == "accuracy"
        and shown["deltas"][0]["regression"]
    )


@pytest.mark.django_db
def test_runner_endpoints_refuse_every_other_caller(renewal, api, client):
    run, _ = services.eval_run_request(org=renewal.world.org, suite="clinical-qa", alias="v1-chat")
    assert client.get("/api/v1/eval-runs/claim/").status_code == 401
    assert runner_api(client, "vcr_not-a-key").get("/api/v1/eval-runs/claim/").status_code == 401
    assert api.get("/api/v1/eval-runs/claim/", key=renewal.world.key).status_code == 404
    response = api.post(f"/api/v1/eval-runs/{run.pk}/results/", {"lease": "x"}, key=renewal.world.key)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    # The runner key reaches nothing of the customer side.
    assert runner_api(client, renewal.runner_key).get("/api/v1/pins/").status_code == 401
    run.refresh_from_db()
    assert run.state == EvalRunState.QUEUED


@pytest.mark.django_db
def test_a_runner_posting_for_another_runners_claim_gets_403_and_nothing_changes(renewal, client):
    services.eval_run_request(org=renewal.world.org, suite="clinical-qa", alias="v1-chat")
    claim = runner_api(client, renewal.runner_key).get("/api/v1/eval-runs/claim/").json()
    other = runner_api(client, renewal.other_runner_key)
    body = {
        "lease": claim["lease"],
        "suite": "clinical-qa",
        "snapshot": claim["snapshot"],
        "scores": good_scores(),
    }
    assert other.post(claim["results_url"], body).status_code == 403
    assert other.post(claim["progress_url"], {"lease": claim["lease"], "progress": 90}).status_code == 403
    run = EvalRun.objects.get(pk=claim["id"])
    assert (run.state, run.progress, run.scores) == (EvalRunState.CLAIMED, 0, None)


@pytest.mark.django_db(transaction=True)
def test_concurrent_claimers_each_take_a_different_run_exactly_once(renewal):
    """Threads with their own database connections claim at once: no run is handed out twice."""
    from contracts.models import EvalSuite, ProcurementBaseline

    w = renewal.world
    for n in range(5):
        suite = EvalSuite.objects.create(slug=f"suite-{n}", name=f"Suite {n}", owner=w.org)
        ProcurementBaseline.objects.create(organization=w.org, suite=suite, result=renewal.baseline_result)
        services.eval_run_request(org=w.org, suite=suite.slug, alias="v1-chat", at=f.days(-1))
    runners = [services.eval_runner_create(name=f"parallel-{n}")[0] for n in range(4)]
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(runners))

    def claim_all(runner):
        try:
            barrier.wait()
            while (run := services.eval_run_claim(runner=runner)) is not None:
                with lock:
                    claimed.append(run.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim_all, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(claimed) == sorted(EvalRun.objects.values_list("pk", flat=True))
    assert len(set(claimed)) == len(claimed) == 5
    assert set(EvalRun.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.django_db
def test_audit_pack_api_queues_reports_and_downloads(
    renewal, api, signing_keys, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/audit-packs/", {"aliases": ["v1-chat"], "from": "2025-01-01"}, key=renewal.world.key
        )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["aliases"] == ["v1-chat"] and body["from"].startswith("2025-01-01")
    status = api.get(body["status_url"], key=renewal.world.key).json()
    assert status["status"] == "ready" and status["progress"] == 100 and len(status["file_sha256"]) == 64
    download = api.get(status["download_url"], key=renewal.world.key)
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert api.get(status["download_url"], key=renewal.world.other_key).status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"aliases": ["globex-only"]}, "aliases"),
        ({"from": "2025-06-01", "to": "2025-05-01"}, "to"),
        ({"from": "not a date"}, "from"),
        ({"aliases": "v1-chat"}, "aliases"),
    ],
)
def test_a_bad_pack_request_answers_400_in_the_envelope_and_stores_nothing(renewal, api, payload, field):
    from contracts.catalog.services import alias_create

    theirs = alias_create(name="globex-only", family=renewal.world.family, target=renewal.world.current)
    f.make_pin(org=renewal.world.other_org, alias=theirs)
    response = api.post("/api/v1/audit-packs/", payload, key=renewal.world.key)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert AuditPack.objects.count() == 0


@pytest.mark.django_db
def test_members_cannot_build_audit_packs(renewal, client):
    client.force_login(renewal.world.member)
    response = client.post("/api/v1/audit-packs/", {}, content_type="application/json")
    assert response.status_code == 403
    assert AuditPack.objects.count() == 0

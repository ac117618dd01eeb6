"""Renewal pages: refresh forms on the baselines and migration pages, self-polling progress rows, the audit
pack form on the exports page, errors on the same page with what was chosen kept."""

from __future__ import annotations

import pytest

from contracts.models import AuditPack, EvalRun
from contracts.renewal import services
from tests.contracts.renewal.support import good_scores

pytestmark = pytest.mark.django_db


def test_the_baselines_page_offers_a_refresh_on_the_served_and_proposed_snapshots(renewal, client):
    client.force_login(renewal.world.admin)
    page = client.get(f"/o/{renewal.world.org.slug}/baselines/").content.decode()
    assert "Refresh a procurement eval" in page
    assert 'value="alias:v1-chat"' in page and f"{renewal.newest.name}, served now on v1-chat" in page
    assert 'hx-post="/o/acme/eval-runs/new/"' in page and "<script" not in page.split("</header>")[-1]


def test_asking_from_the_page_queues_a_run_and_its_row_polls_until_done(renewal, client):
    w = renewal.world
    client.force_login(w.admin)
    response = client.post(
        f"/o/{w.org.slug}/eval-runs/new/",
        {"suite": "clinical-qa", "target": "alias:v1-chat"},
        HTTP_HX_REQUEST="true",
    )
    run = EvalRun.objects.get()
    row = response.content.decode()
    assert response.status_code == 200 and f'id="run-{run.pk}"' in row
    assert 'hx-trigger="every 2s"' in row and "waiting for the eval runner" in row and "<progress" in row
    claim = services.eval_run_claim(runner=renewal.runner)
    services.eval_run_progress(
        runner=renewal.runner, run_id=run.pk, lease_token=claim.lease_token, progress=60
    )
    row = client.get(f"/o/{w.org.slug}/eval-runs/{run.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'value="60"' in row and "60% running" in row
    services.eval_run_complete(
        runner=renewal.runner, run_id=run.pk, lease_token=claim.lease_token, suite="clinical-qa",
        snapshot=renewal.newest.name, scores=good_scores(accuracy=0.7),
    )  # fmt: skip
    row = client.get(f"/o/{w.org.slug}/eval-runs/{run.pk}/").content.decode()
    assert "hx-trigger" not in row and "results in" in row
    assert "accuracy 0.82 → 0.7" in row and "regression" in row


def test_without_javascript_the_form_redirects_back_with_a_message(renewal, client):
    w = renewal.world
    client.force_login(w.admin)
    response = client.post(
        f"/o/{w.org.slug}/eval-runs/new/", {"suite": "clinical-qa", "target": "alias:v1-chat"}, follow=True
    )
    assert response.redirect_chain[-1][0] == f"/o/{w.org.slug}/baselines/"
    assert "queued for the vendor" in response.content.decode()


def test_a_bad_refresh_shows_the_error_on_the_page_with_the_choice_kept(renewal, client):
    w = renewal.world
    client.force_login(w.admin)
    response = client.post(
        f"/o/{w.org.slug}/eval-runs/new/", {"suite": "clinical-qa", "target": "snapshot:chat-2025-01-01"}
    )
    page = response.content.decode()
    assert (
        response.status_code == 400 and 'id="refresh-error"' in page and "<strong>snapshot</strong>" in page
    )
    assert '<option value="clinical-qa" selected>' in page
    assert EvalRun.objects.count() == 0


def test_members_cannot_ask_for_a_refresh_from_the_page(renewal, client):
    client.force_login(renewal.world.member)
    response = client.post(
        f"/o/{renewal.world.org.slug}/eval-runs/new/", {"suite": "clinical-qa", "target": "alias:v1-chat"}
    )
    assert response.status_code == 403 and EvalRun.objects.count() == 0
    assert (
        "Only an organisation admin can ask"
        in client.get(f"/o/{renewal.world.org.slug}/baselines/").content.decode()
    )


def test_the_migration_page_offers_the_refresh_on_the_proposed_snapshot(renewal, client):
    from contracts.consent.services import migration_propose
    from contracts.models import Pin
    from tests import factories as f

    w = renewal.world
    extra = f.SnapshotFactory(family=w.family, name="chat-2025-12-01", released_at=f.days(-5))
    migration = migration_propose(pin=Pin.objects.get(pk=w.pin.pk), to_snapshot=extra)
    client.force_login(w.admin)
    url = f"/o/{w.org.slug}/migrations/{migration.pk}/"
    page = client.get(url).content.decode()
    assert (
        f"Re-run your procurement eval on {extra.name}" in page
        and f'value="migration:{migration.pk}"' in page
    )
    response = client.post(
        f"/o/{w.org.slug}/eval-runs/new/",
        {"suite": "clinical-qa", "target": f"migration:{migration.pk}", "from_migration": str(migration.pk)},
    )
    assert response.status_code == 302 and response["Location"] == url
    run = EvalRun.objects.get()
    assert (run.snapshot, run.migration) == (extra, migration)
    assert f'id="run-{run.pk}"' in client.get(url).content.decode()


def test_the_exports_page_builds_an_audit_pack_and_lists_it(
    renewal, client, signing_keys, django_capture_on_commit_callbacks
):
    w = renewal.world
    client.force_login(w.legal)
    page = client.get(f"/o/{w.org.slug}/exports/").content.decode()
    assert "Build audit pack" in page and '<option value="v1-chat"' in page
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(
            f"/o/{w.org.slug}/exports/audit-packs/new/", {"aliases": ["v1-chat"]}, HTTP_HX_REQUEST="true"
        )
    pack = AuditPack.objects.get()
    row = response.content.decode()
    assert f'id="pack-{pack.pk}"' in row and 'hx-trigger="every 2s"' in row and "<progress" in row
    from contracts.renewal import tasks

    tasks.audit_pack_build(pack.pk)
    row = client.get(f"/o/{w.org.slug}/exports/audit-packs/{pack.pk}/").content.decode()
    assert "hx-trigger" not in row and "Download audit pack" in row
    download = client.get(f"/o/{w.org.slug}/exports/audit-packs/{pack.pk}/download/")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"


def test_a_bad_pack_request_shows_the_error_on_the_exports_page_with_what_was_typed(renewal, client):
    w = renewal.world
    client.force_login(w.admin)
    response = client.post(
        f"/o/{w.org.slug}/exports/audit-packs/new/",
        {"aliases": ["v1-chat"], "from": "2025-06-01", "to": "2025-05-01"},
    )
    page = response.content.decode()
    assert response.status_code == 400 and 'id="pack-error"' in page and "<strong>to</strong>" in page
    assert (
        'value="2025-06-01"' in page
        and 'value="2025-05-01"' in page
        and '<option value="v1-chat" selected>' in page
    )
    assert AuditPack.objects.count() == 0


def test_members_cannot_build_an_audit_pack_from_the_page(renewal, client):
    client.force_login(renewal.world.member)
    assert client.post(f"/o/{renewal.world.org.slug}/exports/audit-packs/new/", {}).status_code == 403
    assert AuditPack.objects.count() == 0


def test_the_pdf_signing_certificate_is_published(client, signing_keys):
    response = client.get("/.well-known/pdf-signing-cert.pem")
    assert response.status_code == 200 and response.content.startswith(b"-----BEGIN CERTIFICATE-----")

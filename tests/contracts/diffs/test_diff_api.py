"""The diff endpoint of the API and the diff, PDF job and baseline pages of the portal."""

from __future__ import annotations

import json
import re

import pytest

from contracts.evals import selectors as evals_selectors
from contracts.evals import services as evals_services
from contracts.models import ConsentRecord, LedgerAction, ProcurementBaseline
from tests import factories as f
from tests.contracts.diff_support import big_diff_data, make_result, make_samples, make_suite

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(world):
    own = make_suite("acme-private", owner=world.org)
    foreign = make_suite("globex-secret", owner=world.other_org)
    public = make_suite("public-qa")
    for suite in (own, foreign, public):
        make_result(suite, world.old, accuracy=0.8)
        make_result(suite, world.current, accuracy=0.7)
    make_samples(world.old, {"p1": "one two three"})
    make_samples(world.current, {"p1": "one 2 three"})
    return world.old.name, world.current.name


@pytest.mark.parametrize(
    ("fmt", "content_type", "disposition"),
    [
        ("json", "application/json", "inline"),
        ("md", "text/markdown; charset=utf-8", "attachment"),
        ("html", "text/html; charset=utf-8", "attachment"),
        ("pdf", "application/pdf", "attachment"),
    ],
)
def test_every_format_downloads_with_its_filename(api, world, pair, fmt, content_type, disposition):
    a, b = pair
    response = api.get(f"/api/v1/diffs/{a}...{b}/?format={fmt}", key=world.key)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'{disposition}; filename="diff_{a}...{b}.{fmt}"'
    assert len(response.content) > 200


def test_json_is_the_default_and_carries_the_content_hash_header(api, world, pair):
    a, b = pair
    response = api.get(f"/api/v1/diffs/{a}...{b}/", key=world.key)
    body = response.json()
    assert body["a"]["id"] == a and body["b"]["id"] == b
    assert response["X-Content-SHA256"] == body["content_sha256"]


def test_api_diff_shows_only_public_and_own_suites(api, world, pair):
    a, b = pair
    mine = api.get(f"/api/v1/diffs/{a}...{b}/", key=world.key).json()
    theirs = api.get(f"/api/v1/diffs/{a}...{b}/", key=world.other_key).json()
    assert {s["suite"] for s in mine["evals"]} == {"acme-private", "public-qa"}
    assert {s["suite"] for s in theirs["evals"]} == {"globex-secret", "public-qa"}
    for fmt in ("md", "html"):
        text = api.get(f"/api/v1/diffs/{a}...{b}/?format={fmt}", key=world.other_key).content.decode()
        assert "acme-private" not in text


def test_different_families_answer_400_saying_so_and_unknown_ids_404(api, world):
    other = f.SnapshotFactory(name="embed-2025-01-01")
    response = api.get(f"/api/v1/diffs/{world.old.name}...{other.name}/", key=world.key)
    assert response.status_code == 400
    assert "different families" in response.json()["error"]["message"]
    missing = api.get(f"/api/v1/diffs/{world.old.name}...chat-1999-01-01/", key=world.key)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api.get(f"/api/v1/diffs/{world.old.name}...{world.current.name}/").status_code == 401


def test_an_unknown_format_is_refused_naming_the_field(api, world):
    response = api.get(f"/api/v1/diffs/{world.old.name}...{world.current.name}/?format=docx", key=world.key)
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]


def test_diff_json_of_a_large_diff_takes_a_bounded_number_of_queries(
    api, world, django_assert_max_num_queries
):
    big_diff_data(world.old, world.current, suites=10, metrics=4, subsets=3, samples=10)
    url = f"/api/v1/diffs/{world.old.name}...{world.current.name}/"
    api.get(url, key=world.key)  # warms the key cache
    with django_assert_max_num_queries(5):
        response = api.get(url, key=world.key)
    assert response.status_code == 200 and len(response.json()["evals"]) == 10


# ---------------------------------------------------------------------------------------------
# Portal pages
# ---------------------------------------------------------------------------------------------


def test_diff_page_shows_the_svg_chart_downloads_and_no_inline_styles(client, world, pair):
    a, b = pair
    client.force_login(world.member)
    response = client.get(f"/o/acme/diff/{a}...{b}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "<svg" in html and "<rect" in html
    assert not re.search(r"\sstyle=", html) and not re.search(r"\son[a-z]+=", html)
    for fmt in ("json", "md", "html", "pdf"):
        assert f'href="?format={fmt}"' in html
    assert "globex-secret" not in html and "acme-private" in html
    download = client.get(f"/o/acme/diff/{a}...{b}/?format=md")
    assert download["Content-Disposition"] == f'attachment; filename="diff_{a}...{b}.md"'


def test_diff_page_of_another_organisation_is_404(client, world, pair):
    a, b = pair
    client.force_login(world.outsider)
    assert client.get(f"/o/acme/diff/{a}...{b}/").status_code == 404


def test_diff_page_of_two_families_is_400(client, world):
    other = f.SnapshotFactory(name="embed-2025-01-01")
    client.force_login(world.member)
    response = client.get(f"/o/acme/diff/{world.old.name}...{other.name}/")
    assert response.status_code == 400 and b"different families" in response.content


def test_render_pdf_starts_a_job_polled_with_htmx_until_the_download_is_ready(
    client, world, pair, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    a, b = pair
    client.force_login(world.member)
    with django_capture_on_commit_callbacks(execute=True):
        started = client.post(f"/o/acme/diff/{a}...{b}/pdf/", HTTP_HX_REQUEST="true")
    assert started.status_code == 200
    poll = re.search(r'hx-get="([^"]+)"', started.content.decode()).group(1)
    # Celery runs eagerly in tests (after the request's commit): the next poll finds it ready.
    html = client.get(poll, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in html
    download = re.search(r'href="([^"]+/pdf/download/\?job=[0-9a-f]+)"', html).group(1)
    file = client.get(download)
    assert file.status_code == 200 and file["Content-Type"] == "application/pdf"
    assert f'filename="diff_{a}...{b}.pdf"' in file["Content-Disposition"]
    assert b"".join(file.streaming_content).startswith(b"%PDF")
    assert list((tmp_path / "diffs").rglob("*.pdf"))
    job = download.split("job=")[1]
    client.force_login(world.outsider)
    assert client.get(download).status_code == 404
    assert client.get(f"/o/globex/diff/{a}...{b}/pdf/?job={job}").status_code == 404


def test_a_running_job_renders_a_progress_bar_polled_every_second(client, world, pair, settings, tmp_path):
    from contracts.diffs import services as tasks

    settings.MEDIA_ROOT = tmp_path
    a, b = pair
    client.force_login(world.member)
    html = client.post(f"/o/acme/diff/{a}...{b}/pdf/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in html and "<progress" in html and 'value="0"' in html
    job = re.search(r"job=([0-9a-f]+)", html).group(1)
    tasks.diff_pdf_render(job_id=job)
    done = client.get(f"/o/acme/diff/{a}...{b}/pdf/?job={job}", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done and "Download diff_" in done


def test_admin_marks_a_baseline_on_the_baselines_page_and_members_cannot(client, world, pair):
    result = evals_selectors.eval_result_list(org=world.org)[0]
    client.force_login(world.member)
    assert client.post(f"/o/acme/baselines/{result.pk}/").status_code == 403
    page = client.get("/o/acme/baselines/").content.decode()
    assert "Mark as baseline" not in page and "globex-secret" not in page
    client.force_login(world.admin)
    assert "Mark as baseline" in client.get("/o/acme/baselines/").content.decode()
    response = client.post(f"/o/acme/baselines/{result.pk}/")
    assert response.status_code == 302
    assert ProcurementBaseline.objects.get(organization=world.org).result == result
    assert ConsentRecord.objects.filter(organization=world.org, action=LedgerAction.BASELINE).exists()


def test_baseline_fragment_warns_when_the_served_snapshot_falls_below_the_baseline(client, world, pair):
    from django.template import Context, Template

    public = evals_selectors.eval_result_list(org=world.org)
    base = next(r for r in public if r.suite.slug == "public-qa" and r.snapshot == world.old)
    evals_services.baseline_mark(org=world.org, result=base, acting_user=world.admin)
    html = Template("{% load diffs %}{% baseline_delta org snapshot compare_from=old %}").render(
        Context({"org": world.org, "snapshot": world.current, "old": world.old})
    )
    assert "no longer meets your procurement baseline within tolerance" in html
    assert f"/o/acme/diff/{world.old.name}...{world.current.name}/" in html
    served = Template("{% load diffs %}{% baseline_delta org %}").render(Context({"org": world.org}))
    assert (
        "meets baseline" in served and "no longer meets" not in served
    )  # acme is served the baseline snapshot


def test_schema_documents_the_diff_and_eval_endpoints(client):
    schema = client.get("/api/schema/?format=json").content.decode()
    body = json.loads(schema) if schema.startswith("{") else None
    text = schema if body is None else json.dumps(body)
    for path in (
        "/api/v1/diffs/{a}...{b}/",
        "/api/v1/evals/",
        "/api/v1/evals/{result_id}/baseline/",
        "/api/v1/snapshots/{snapshot_id}/golden-samples/",
    ):
        assert path in text


def test_a_large_diff_offers_only_the_background_pdf(client, world, pair, settings):
    settings.DIFF_PDF_SYNC_MAX_ROWS = 1
    a, b = pair
    client.force_login(world.member)
    html = client.get(f"/o/acme/diff/{a}...{b}/").content.decode()
    assert 'href="?format=pdf"' not in html
    assert "Render PDF" in html and "rendered in the background" in html


def test_api_get_of_a_large_diff_pdf_starts_nothing_and_says_to_post(
    api, world, pair, settings, tmp_path, django_capture_on_commit_callbacks
):
    """A GET (a cross-site link can make one) never starts a PDF job (issue #15, item 7)."""
    settings.DIFF_PDF_SYNC_MAX_ROWS = 1
    settings.MEDIA_ROOT = tmp_path
    a, b = pair
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refused = api.get(f"/api/v1/diffs/{a}...{b}/?format=pdf", key=world.key)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "use_post"
    assert callbacks == [] and not any(tmp_path.rglob("*.pdf"))


def test_api_pdf_of_a_large_diff_is_started_by_post_and_the_poll_serves_the_pdf(
    api, world, pair, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.DIFF_PDF_SYNC_MAX_ROWS = 1
    settings.MEDIA_ROOT = tmp_path
    a, b = pair
    assert api.post(f"/api/v1/diffs/{a}...{b}/", key=world.other_key).status_code in (202, 404)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = api.post(f"/api/v1/diffs/{a}...{b}/", key=world.key)
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "pending" and accepted["Location"] == body["poll"]
    assert api.get(body["poll"], key=world.other_key).status_code == 404
    ready = api.get(body["poll"], key=world.key)
    assert ready.status_code == 200 and ready["Content-Type"] == "application/pdf"
    assert f'filename="diff_{a}...{b}.pdf"' in ready["Content-Disposition"]
    assert api.get(f"/api/v1/diffs/{a}...{b}/?format=pdf&job=nope", key=world.key).status_code == 404


def test_dashboard_and_migration_page_show_the_baseline_delta(client, world):
    from contracts.models import Migration

    suite = make_suite("qa")
    base = make_result(suite, world.old, accuracy=0.8)
    make_result(suite, world.current, accuracy=0.7)
    evals_services.baseline_mark(org=world.org, result=base, acting_user=world.admin)
    client.force_login(world.admin)
    dashboard = client.get("/o/acme/").content.decode()
    assert "Procurement baseline" in dashboard and "meets baseline" in dashboard
    migration = Migration.objects.create(
        organization=world.org, pin=world.pin, from_snapshot=world.old, to_snapshot=world.current
    )
    page = client.get(f"/o/acme/migrations/{migration.pk}/").content.decode()
    assert "no longer meets your procurement baseline within tolerance" in page
    assert f"/o/acme/diff/{world.old.name}...{world.current.name}/" in page

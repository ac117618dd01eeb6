"""The exports page: roles, the log, queued exports with progress rows, checkpoints, bad input."""

from __future__ import annotations

import pytest

from contracts import signing
from contracts.ledger.checkpoints import checkpoint_create
from contracts.models import ConsentExport, ExportStatus
from tests.contracts.export_helpers import seed_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _files(settings, tmp_path):
    settings.SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.MEDIA_ROOT = tmp_path / "media"
    signing.keyring.cache_clear()
    yield
    signing.keyring.cache_clear()


@pytest.mark.parametrize("who", ["legal", "admin"])
def test_legal_and_admins_see_the_page_with_checkpoints(
    world, client, who, django_capture_on_commit_callbacks
):
    seed_ledger(world, n=2)
    with django_capture_on_commit_callbacks(execute=False):
        checkpoint = checkpoint_create(org=world.org)
    client.force_login(getattr(world, who))
    response = client.get("/o/acme/exports/")
    assert response.status_code == 200
    assert checkpoint.head_hash in response.content.decode()


def test_member_gets_403(world, client):
    client.force_login(world.member)
    assert client.get("/o/acme/exports/").status_code == 403
    assert client.post("/o/acme/exports/download/", {"format": "csv"}).status_code == 403


def test_streamed_download_from_the_page_is_logged(world, client):
    seed_ledger(world, n=3)
    client.force_login(world.legal)
    response = client.post("/o/acme/exports/download/", {"format": "ndjson", "from": "2025-03-02"})
    assert len(b"".join(response.streaming_content).splitlines()) == 2
    export = ConsentExport.objects.get()
    assert (export.format, export.filters, export.status) == (
        "ndjson",
        {"from": "2025-03-02T00:00:00Z"},
        "ready",
    )
    page = client.get("/o/acme/exports/").content.decode()
    assert export.file_sha256 in page and "from=2025-03-02T00:00:00Z" in page


def test_bad_range_re_renders_the_form_with_a_400_naming_the_field(world, client):
    client.force_login(world.legal)
    response = client.post(
        "/o/acme/exports/download/", {"format": "csv", "from": "2025-03-05", "to": "2025-03-01"}
    )
    assert response.status_code == 400
    assert "<strong>from</strong>" in response.content.decode()
    assert not ConsentExport.objects.exists()


def test_queued_export_row_polls_until_ready_then_offers_the_download(world, client):
    seed_ledger(world, n=2)
    client.force_login(world.legal)
    response = client.post("/o/acme/exports/new/", {"format": "pdf"})  # on_commit not run: stays pending
    assert response.status_code == 302
    export = ConsentExport.objects.get()
    row = client.get(f"/o/acme/exports/{export.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in row and "<progress" in row
    from contracts.ledger import tasks

    tasks.export_build(export.pk)
    row = client.get(f"/o/acme/exports/{export.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in row and f"/o/acme/exports/{export.pk}/download/" in row
    download = client.get(f"/o/acme/exports/{export.pk}/download/")
    assert download["Content-Type"] == "application/pdf"
    assert ConsentExport.objects.get().status == ExportStatus.READY


def test_streamed_formats_cannot_be_queued(world, client):
    client.force_login(world.admin)
    assert client.post("/o/acme/exports/new/", {"format": "csv"}).status_code == 400


def test_build_buttons_queue_through_the_post_form_and_return_to_the_page(world, client):
    client.force_login(world.legal)
    response = client.post("/o/acme/exports/download/", {"format": "bundle", "action": "consent"})
    assert response.status_code == 302 and response["Location"] == "/o/acme/exports/"
    export = ConsentExport.objects.get()
    assert (export.format, export.filters, export.requested_by) == (
        "bundle",
        {"action": "consent"},
        world.legal,
    )
    form = client.get("/o/acme/exports/").content.decode().split('id="export-form"')
    assert 'method="post"' in form[0].rsplit("<form", 1)[1]
    assert "csrfmiddlewaretoken" in form[1].split("</form>")[0]


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "pdf", "bundle"])
def test_a_get_to_the_download_url_changes_nothing(world, client, fmt, django_capture_on_commit_callbacks):
    """A cross-site link or top-level navigation (a GET) neither logs an export nor starts a job."""
    seed_ledger(world, n=2)
    client.force_login(world.legal)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.get("/o/acme/exports/download/", {"format": fmt})
    assert response.status_code == 405 and callbacks == []
    assert not ConsentExport.objects.exists()


def test_the_download_form_needs_its_csrf_token(world, client):
    from django.test import Client

    seed_ledger(world, n=2)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(world.legal)
    assert strict.post("/o/acme/exports/download/", {"format": "bundle"}).status_code == 403
    assert not ConsentExport.objects.exists()

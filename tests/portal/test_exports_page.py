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
    assert client.get("/o/acme/exports/download/?format=csv").status_code == 403


def test_streamed_download_from_the_page_is_logged(world, client):
    seed_ledger(world, n=3)
    client.force_login(world.legal)
    response = client.get("/o/acme/exports/download/", {"format": "ndjson", "from": "2025-03-02"})
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
    response = client.get(
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


def test_build_buttons_queue_through_the_get_form_and_return_to_the_page(world, client):
    client.force_login(world.legal)
    response = client.get("/o/acme/exports/download/", {"format": "bundle", "action": "consent"})
    assert response.status_code == 302 and response["Location"] == "/o/acme/exports/"
    export = ConsentExport.objects.get()
    assert (export.format, export.filters, export.requested_by) == (
        "bundle",
        {"action": "consent"},
        world.legal,
    )
    assert (
        "csrfmiddlewaretoken"
        not in client.get("/o/acme/exports/")
        .content.decode()
        .split('id="export-form"')[1]
        .split("</form>")[0]
    )

"""The export API: roles, staff scope, streamed formats, queued PDF/bundle with status and download."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile

import pytest
from django.contrib.auth import get_user_model

from contracts import signing
from contracts.ledger import exports
from contracts.models import ApiKeyScope, ConsentExport, ExportStatus
from contracts.tenancy.services import api_key_create
from tests.contracts.export_helpers import seed_ledger

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_keys")]
URL = "/api/v1/consents/export/"


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_legal_member_streams_csv_and_the_export_is_logged(world, client):
    seed_ledger(world, n=4)
    client.force_login(world.legal)
    response = client.get(URL, {"format": "csv", "org": "acme"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    data = body(response)
    assert len(list(csv.DictReader(io.StringIO(data.decode())))) == 4
    export = ConsentExport.objects.get(pk=response["X-Export-Id"])
    assert (export.requested_by, export.status, export.record_count) == (world.legal, ExportStatus.READY, 4)
    assert export.file_sha256 == hashlib.sha256(data).hexdigest()


def test_api_key_streams_ndjson_of_its_own_organisation_only(world, api):
    seed_ledger(world, n=3)
    response = api.get(URL + "?format=ndjson", key=world.key)
    lines = body(response).decode().splitlines()
    assert response.status_code == 200 and len(lines) == 3
    assert {json.loads(x)["organization"] for x in lines} == {"acme"}


def test_member_without_legal_or_admin_role_gets_403_and_nothing_is_logged(world, client):
    client.force_login(world.member)
    response = client.get(URL, {"format": "csv"})
    assert response.status_code == 403
    assert response.json()["error"]["fields"] == {"role": "member"}
    assert not ConsentExport.objects.exists()


@pytest.mark.parametrize(
    ("query", "field"),
    [("format=xlsx", "format"), ("", "format"), ("format=csv&from=2025-03-05&to=2025-03-01", "from"),
     ("format=csv&to=soon", "to"), ("format=ndjson&action=sign", "action")],
)  # fmt: skip
def test_bad_input_is_a_400_naming_the_field_and_writes_nothing(world, api, query, field):
    response = api.get(f"{URL}?{query}", key=world.key)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not ConsentExport.objects.exists()


def test_empty_range_is_a_valid_empty_export(world, api):
    seed_ledger(world, n=2)
    response = api.get(URL + "?format=csv&from=2031-01-01", key=world.key)
    assert response.status_code == 200
    assert body(response).decode().splitlines() == [",".join(exports.EXPORT_FIELDS)]


def test_bundle_is_queued_then_status_reports_progress_and_download(
    world, api, django_capture_on_commit_callbacks
):
    seed_ledger(world, n=5)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(URL, {"format": "bundle", "action": "consent"}, key=world.key)
    assert response.status_code == 202
    queued = response.json()
    assert queued["status"] == "pending" and queued["download_url"] is None
    status = api.get(queued["status_url"], key=world.key).json()
    assert (status["status"], status["progress"], status["record_count"]) == ("ready", 100, 2)
    download = api.get(status["download_url"], key=world.key)
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    data = body(download)
    assert hashlib.sha256(data).hexdigest() == status["file_sha256"]
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert json.loads(z.read("manifest.json"))["filters"] == {"action": "consent"}


def test_pdf_is_built_by_the_task_and_downloads_as_pdf(world, api, django_capture_on_commit_callbacks):
    seed_ledger(world, n=2)
    with django_capture_on_commit_callbacks(execute=True):
        queued = api.post(URL, {"format": "pdf"}, key=world.key).json()
    status = api.get(queued["status_url"], key=world.key).json()
    download = api.get(status["download_url"], key=world.key)
    assert body(download).startswith(b"%PDF")


def test_another_organisation_cannot_see_or_download_an_export(
    world, api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        queued = api.post(URL, {"format": "bundle"}, key=world.key).json()
    assert api.get(queued["status_url"], key=world.other_key).status_code == 404
    assert api.get(queued["status_url"] + "download/", key=world.other_key).status_code == 404


def test_download_before_the_file_is_ready_is_a_409(world, api):
    queued = api.post(URL, {"format": "bundle"}, key=world.key).json()  # on_commit never ran
    response = api.get(queued["status_url"] + "download/", key=world.key)
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"status": "pending"}


def test_staff_key_exports_one_or_every_organisation(world, api):
    seed_ledger(world, n=2)
    _key, staff_key = api_key_create(org=None, name="staff", scope=ApiKeyScope.STAFF)
    one = body(api.get(URL + "?format=ndjson&org=globex", key=staff_key)).decode().splitlines()
    assert {json.loads(x)["organization"] for x in one} == {"globex"}
    every = body(api.get(URL + "?format=ndjson&org=*", key=staff_key)).decode().splitlines()
    assert {json.loads(x)["organization"] for x in every} == {"acme", "globex"}
    assert ConsentExport.objects.filter(organization=None, filters={"org": "*"}).count() == 1


def test_org_star_is_not_special_for_customers(world, api):
    assert api.get(URL + "?format=csv&org=*", key=world.key).status_code == 200  # keys act for their own org
    response = api.get(URL + "?format=csv&org=*", key=world.key)
    assert all(row.startswith(("organization", "acme")) for row in body(response).decode().splitlines())


def test_staff_session_exports_every_organisation(world, client):
    seed_ledger(world, n=1)
    staff = get_user_model().objects.create_user("vendor-staff", password="x", is_staff=True)
    client.force_login(staff)
    lines = body(client.get(URL, {"format": "ndjson", "org": "*"})).decode().splitlines()
    assert {json.loads(x)["organization"] for x in lines} == {"acme", "globex"}


def test_unauthenticated_request_is_refused(world, client):
    assert client.get(URL, {"format": "csv"}).status_code in (401, 403)


def test_public_key_endpoint_serves_newest_one_by_id_and_all(world, client):
    first = signing.current_key_id("consent")
    second = signing.rotate("consent")
    newest = client.get("/.well-known/consent-signing-key.pem")
    assert newest["X-Key-Id"] == second
    assert newest.content.decode().startswith("-----BEGIN PUBLIC KEY-----")
    assert client.get(
        f"/.well-known/consent-signing-key.pem?kid={first}"
    ).content.decode() == signing.public_key_pem("consent", first)
    every = client.get("/.well-known/consent-signing-key.pem?all=1").content.decode()
    assert f"# kid: {first}" in every and f"# kid: {second}" in every
    assert client.get("/.well-known/consent-signing-key.pem?kid=nope").status_code == 404


def test_expired_exports_lose_their_file_and_keep_their_log(
    world, api, settings, django_capture_on_commit_callbacks
):
    from contracts.ledger import tasks

    settings.EXPORT_RETENTION_HOURS = 0
    with django_capture_on_commit_callbacks(execute=True):
        queued = api.post(URL, {"format": "bundle"}, key=world.key).json()
    export = ConsentExport.objects.get(pk=queued["id"])
    path = settings.MEDIA_ROOT / export.file_path
    assert path.exists()
    assert tasks.exports_expire() == 1
    export.refresh_from_db()
    assert export.status == ExportStatus.EXPIRED and not path.exists() and export.file_sha256
    assert api.get(queued["status_url"] + "download/", key=world.key).status_code == 409


@pytest.mark.parametrize("fmt", ["pdf", "bundle"])
def test_get_never_starts_a_pdf_or_bundle_job(world, api, fmt, django_capture_on_commit_callbacks):
    """A cross-site link or navigation is a GET: it must not create an export job (issue #15, item 7)."""
    seed_ledger(world, n=2)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = api.get(f"{URL}?format={fmt}", key=world.key)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "use_post" and "format" in response.json()["error"]["fields"]
    assert not ConsentExport.objects.exists() and callbacks == []


def test_post_with_a_streamed_format_is_refused_and_writes_nothing(world, api):
    response = api.post(URL, {"format": "csv"}, key=world.key)
    assert response.status_code == 400 and "format" in response.json()["error"]["fields"]
    assert not ConsentExport.objects.exists()

"""The audit pack: what it says, that its PDF is signed (and a changed byte shows), that its zip verifies
offline with the standalone verifier, and that bad requests store nothing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from pypdf import PdfReader

from contracts import pdfsign
from contracts.errors import ApplicationError
from contracts.ledger import exports
from contracts.ledger.checkpoints import checkpoint_create
from contracts.models import AuditPack, ExportStatus
from contracts.renewal import services
from tests.contracts.export_helpers import pdf_runs, rewrite_zip
from tests.contracts.renewal.support import good_scores

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_keys")]
VERIFIER = "contracts/ledger/verify_bundle_standalone.py"


@pytest.fixture
def refreshed(renewal):
    """The refresh of clinical-qa on the snapshot served now: accuracy fell beyond tolerance."""
    w = renewal.world
    run, _ = services.eval_run_request(org=w.org, suite="clinical-qa", alias="v1-chat")
    claim = services.eval_run_claim(runner=renewal.runner)
    return services.eval_run_complete(
        runner=renewal.runner, run_id=run.pk, lease_token=claim.lease_token, suite="clinical-qa",
        snapshot=renewal.newest.name, scores=good_scores(accuracy=0.74, citation=0.83),
    )  # fmt: skip


@pytest.fixture
def pack_zip(renewal, refreshed, tmp_path, django_capture_on_commit_callbacks) -> Path:
    with django_capture_on_commit_callbacks(execute=False):
        checkpoint_create(org=renewal.world.org)
    with django_capture_on_commit_callbacks(execute=True):
        pack = services.audit_pack_request(org=renewal.world.org, acting_user=renewal.world.legal)
    pack.refresh_from_db()
    assert pack.status == ExportStatus.READY and pack.progress == 100, pack.error
    return Path(django_settings.MEDIA_ROOT) / pack.file_path


def member(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(name)


def test_the_summary_tells_the_story_in_plain_language(pack_zip, renewal):
    doc = json.loads(member(pack_zip, "audit-pack.json"))
    w = renewal.world
    summary = "\n".join(doc["summary"])
    assert f"v1-chat: evaluated on {w.old.name} (Clinical QA)" in summary
    assert f"Moved from {w.old.name} to {w.current.name} on " in summary
    assert f"with the consent of {w.admin.email}" in summary and "under terms v2025-01" in summary
    assert f"Moved from {w.current.name} to {renewal.newest.name}" in summary
    assert (
        "forced at retirement after notices on" in summary and f"acknowledged by {w.legal.email}" in summary
    )
    assert "accuracy fell from 0.82 to 0.74 (a regression beyond the tolerance of 0.01)" in summary
    # The summary comes first in the document, as in the PDF.
    assert list(doc)[:6] == ["format", "organization", "generated_at", "period", "aliases", "summary"]


def test_each_change_cites_the_record_that_authorised_it_or_the_notice_trail(pack_zip, renewal):
    doc = json.loads(member(pack_zip, "audit-pack.json"))
    (section,) = doc["sections"]
    consented, forced = (c for c in section["changes"] if c["kind"] in ("consented", "forced"))
    auth = consented["authorisation"]
    assert auth["action"] == "consent" and auth["actor"] == renewal.world.admin.email
    assert (
        auth["terms_version"] == "2025-01"
        and len(auth["terms_sha256"]) == 64
        and len(auth["diff_sha256"]) == 64
    )
    assert forced["authorisation"]["action"] == "forced" and forced["authorisation"]["actor"] == "system"
    assert [n["milestone"] for n in forced["notices"]] == ["deprecation-announced", "t-30"]
    assert forced["notices"][0]["acknowledged_by"] == renewal.world.legal.email
    assert section["served_now"]["snapshot"] == renewal.newest.name
    (refresh,) = section["refreshed_evals"]
    assert refresh["regressions"] == ["accuracy"]
    assert [m["metric"] for m in refresh["metrics"]] == ["accuracy", "citation_rate"]  # regressions first
    quoted = {r["seq"] for r in doc["ledger"]["records"]}
    assert {auth["seq"], forced["authorisation"]["seq"], section["baselines"][0]["ledger"]["seq"]} <= quoted
    assert doc["ledger"]["checkpoints"] and doc["ledger"]["intact_at_generation"] is True


def test_the_zip_verifies_offline_with_the_standalone_verifier(pack_zip, tmp_path):
    keys = tmp_path / "keys.pem"
    keys.write_text(exports.public_keys_pem())
    ok = subprocess.run(
        [sys.executable, "-I", VERIFIER, str(pack_zip), str(keys)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    manifest = json.loads(member(pack_zip, "manifest.json"))
    assert manifest["format"] == "audit-pack/1"
    assert {"audit-pack.json", "audit-pack.pdf", "records.ndjson", "checkpoints.json"} <= set(
        manifest["files"]
    )


def test_a_quoted_record_that_differs_from_the_chain_is_named_by_the_verifier(pack_zip, tmp_path):
    doc = json.loads(member(pack_zip, "audit-pack.json"))
    doc["ledger"]["records"][0]["actor_email"] = "someone-else@example.com"
    bad = rewrite_zip(pack_zip, tmp_path / "bad.zip", {"audit-pack.json": json.dumps(doc).encode()})
    keys = tmp_path / "keys.pem"
    keys.write_text(exports.public_keys_pem())
    out = subprocess.run(
        [sys.executable, "-I", VERIFIER, str(bad), str(keys)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "audit-pack.json: sha256 differs from the manifest" in out.stdout
    assert (
        f"audit-pack.json: record {doc['organization']['slug']}#{doc['ledger']['records'][0]['seq']} differs"
        in out.stdout
    )


def test_the_pdf_reads_back_and_its_signature_validates(pack_zip, renewal):
    pdf = member(pack_zip, "audit-pack.pdf")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Audit pack" in text and "Summary" in text
    assert "forced at retirement" in text and "accuracy fell from 0.82 to 0.74" in text
    smallest = min(pdf_runs(pdf), key=lambda run: run.size)
    assert smallest.size >= 8, smallest  # readable on paper: hashes and footers too (issue #13)
    status = pdfsign.pdf_signature_check(pdf)
    assert status.ok, status
    assert "Version Contract Portal" in status.signer


def test_a_one_byte_change_to_the_pdf_is_reported_as_modified(pack_zip):
    pdf = bytearray(member(pack_zip, "audit-pack.pdf"))
    # A byte inside the first page's content, well within the signed range.
    at = pdf.index(b"stream", 1000) + 20
    pdf[at] ^= 0x01
    status = pdfsign.pdf_signature_check(bytes(pdf))
    assert status.signed and not status.intact and not status.ok


def test_pyhankos_command_line_validates_the_signature_as_the_docs_show(pack_zip, tmp_path):
    pdf = tmp_path / "audit-pack.pdf"
    pdf.write_bytes(member(pack_zip, "audit-pack.pdf"))
    cert = tmp_path / "portal-pdf-cert.pem"
    cert.write_bytes(pdfsign.certificate_pem())
    cli = str(Path(sys.executable).parent / "pyhanko")
    ok = subprocess.run(
        [cli, "sign", "validate", "--no-revocation-check", "--trust", str(cert), "--pretty-print", str(pdf)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "The signature is judged VALID" in ok.stdout
    data = bytearray(pdf.read_bytes())
    data[data.index(b"stream", 1000) + 20] ^= 0x01
    pdf.write_bytes(bytes(data))
    bad = subprocess.run(
        [cli, "sign", "validate", "--no-revocation-check", "--trust", str(cert), "--pretty-print", str(pdf)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert bad.returncode != 0 and "VALID" not in bad.stdout.replace("INVALID", "")


def test_a_pack_limited_to_aliases_and_a_period(renewal, refreshed, django_capture_on_commit_callbacks):
    from tests import factories as f

    with django_capture_on_commit_callbacks(execute=True):
        pack = services.audit_pack_request(
            org=renewal.world.org, aliases=["v1-chat"], period_from=f.days(-30).date().isoformat()
        )
    pack.refresh_from_db()
    doc = json.loads(member(Path(django_settings.MEDIA_ROOT) / pack.file_path, "audit-pack.json"))
    kinds = [c["kind"] for c in doc["sections"][0]["changes"]]
    assert kinds == ["forced"]  # the consented move (day -60) is before the period
    assert doc["period"]["from"].startswith(f.days(-30).date().isoformat())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"aliases": ["v2-other"]}, "aliases"),
        ({"aliases": "v1-chat"}, "aliases"),
        ({"period_from": "2025-06-01", "period_to": "2025-05-01"}, "to"),
        ({"period_from": "yesterday"}, "from"),
    ],
)
def test_a_bad_pack_request_names_the_field_and_stores_nothing(renewal, kwargs, field):
    with pytest.raises(ApplicationError) as caught:
        services.audit_pack_request(org=renewal.world.org, **kwargs)
    assert field in caught.value.fields and caught.value.status_code == 400
    assert AuditPack.objects.count() == 0


def test_another_organisations_alias_is_refused(renewal):
    from contracts.catalog.services import alias_create
    from contracts.models import Pin

    theirs = alias_create(name="globex-only", family=renewal.world.family, target=renewal.world.current)
    from tests.factories import make_pin

    make_pin(org=renewal.world.other_org, alias=theirs)
    assert Pin.objects.filter(alias=theirs).count() == 1
    with pytest.raises(ApplicationError) as caught:
        services.audit_pack_request(org=renewal.world.org, aliases=["globex-only"])
    assert "globex-only" in caught.value.fields["aliases"]
    assert AuditPack.objects.count() == 0


def test_an_alias_move_followed_a_rollback_and_extended_support_are_each_explained(renewal, world_follow):
    from contracts.renewal.auditpack import audit_pack_document

    org, admin = world_follow
    pack = AuditPack.objects.create(organization=org)
    doc, _ = audit_pack_document(pack=pack)
    (section,) = doc["sections"]
    kinds = [c["kind"] for c in section["changes"]]
    assert kinds == ["pinned", "alias-move", "consented", "rollback"]
    moved = section["changes"][1]
    assert moved["alias_move"]["reason"] == "quality update" and moved["policy"]["set_by"] == admin.username
    rollback = section["changes"][3]
    assert (
        rollback["authorisation"]["action"] == "rollback"
        and rollback["authorisation"]["actor"] == admin.email
    )
    (grant,) = section["extended_support"]
    assert grant["snapshot"] == renewal.world.current.name and grant["ledger"]["action"] == "extended-support"
    summary = "\n".join(doc["summary"])
    assert "when the vendor moved v1-chat, under the follow policy chosen by" in summary
    assert "Rolled back from" in summary and "Extended support bought for" in summary


@pytest.fixture
def world_follow(renewal):
    """globex follows v1-chat: the vendor moves the alias, globex consents to a move and rolls it back,
    and buys extended support."""
    from django.utils import timezone

    from contracts.billing.services import extended_support_grant
    from contracts.catalog.services import alias_move
    from contracts.consent import services as consent
    from contracts.models import Membership, Pin, Role, Snapshot
    from tests import factories as f
    from tests.contracts.ledger_helpers import accept, decider, make_terms

    w = renewal.world
    org = w.other_org
    admin = Membership.objects.get(organization=org, role=Role.ADMIN).user
    accept(org, make_terms("2025-02", effective_at=f.days(-200)), admin)
    from contracts.pins.services import pin_policy_change

    pin = Pin.objects.get(organization=org)
    pin_policy_change(pin=pin, policy="manual", acting_user=admin, at=f.days(-79))
    pin_policy_change(pin=Pin.objects.get(pk=pin.pk), policy="follow", acting_user=admin, at=f.days(-78))
    alias_move(alias=w.alias, to_snapshot=renewal.newest, reason="quality update", at=f.days(-30))
    extra = f.SnapshotFactory(family=w.family, name="chat-2025-11-01", released_at=f.days(-3))
    migration = consent.migration_propose(
        pin=Pin.objects.get(pk=pin.pk), to_snapshot=extra, at=timezone.now()
    )
    consent.migration_consent(migration=migration, decider=decider(admin), at=timezone.now())
    consent.migration_rollback(migration=migration, decider=decider(admin), at=timezone.now())
    Snapshot.objects.filter(pk=w.current.pk).update(
        extended_support_offered=True, extended_support_until=f.days(300)
    )
    extended_support_grant(
        org=org, snapshot=Snapshot.objects.get(pk=w.current.pk), acting_user=admin, simulated=True
    )
    return org, admin

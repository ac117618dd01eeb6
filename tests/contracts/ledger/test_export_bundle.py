"""The evidence bundle: signed, round-trips through verify_export, and every tampering is named."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest
from django.core.management import call_command

from contracts import signing
from contracts.ledger import exports
from contracts.ledger.checkpoints import checkpoint_create
from tests.contracts.export_helpers import bundle_bytes_to, read_member, rewrite_zip, seed_ledger

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_keys")]


@pytest.fixture
def bundle(world, tmp_path, django_capture_on_commit_callbacks):
    seed_ledger(world, n=6)
    with django_capture_on_commit_callbacks(execute=False):
        checkpoint_create(org=world.org)
    path = tmp_path / "bundle.zip"
    bundle_bytes_to(path, world.org)
    return path


def verify(path) -> tuple[int, str]:
    try:
        call_command("verify_export", str(path))
    except SystemExit as exc:
        return exc.code, ""
    return 0, ""


def problems(path) -> list[str]:
    return exports.verify_file(path)


def test_bundle_holds_every_file_and_a_manifest_that_counts_them(bundle, world):
    with zipfile.ZipFile(bundle) as z:
        names = set(z.namelist())
    assert names == {
        "records.ndjson", "records.csv", "terms/1.0.md", "terms/2.0.md", "checkpoints.json", "manifest.json", "manifest.sig",
    }  # fmt: skip
    manifest = json.loads(read_member(bundle, "manifest.json"))
    assert manifest["record_count"] == 6
    assert (manifest["first_seq"], manifest["last_seq"]) == (1, 6)
    assert manifest["chain_head"]["seq"] == 6
    assert manifest["key_id"] == signing.current_key_id("consent")
    assert set(manifest["files"]) == names - {"manifest.json", "manifest.sig"}
    assert manifest["checkpoint_count"] == 1
    assert read_member(bundle, "terms/1.0.md").decode().startswith("# Terms 1.0")


def test_bundle_round_trips_through_verify_export(bundle, capsys):
    call_command("verify_export", str(bundle))
    assert "OK" in capsys.readouterr().out
    assert problems(bundle) == []


def test_standalone_script_verifies_without_django(bundle, tmp_path):
    keys = tmp_path / "keys.pem"
    keys.write_text(exports.public_keys_pem())
    script = "contracts/ledger/verify_bundle_standalone.py"
    ok = subprocess.run(
        [sys.executable, "-I", script, str(bundle), str(keys)], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = rewrite_zip(bundle, tmp_path / "bad.zip", {"terms/1.0.md": b"# Terms 1.0\nnothing promised\n"})
    out = subprocess.run([sys.executable, "-I", script, str(bad), str(keys)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "terms/1.0.md: sha256 differs from the manifest" in out.stdout


@pytest.mark.parametrize("member", ["records.csv", "records.ndjson", "checkpoints.json", "terms/2.0.md"])
def test_changing_any_file_is_detected_and_named(bundle, tmp_path, member):
    data = read_member(bundle, member)
    bad = rewrite_zip(bundle, tmp_path / "bad.zip", {member: data + b"\n "})
    found = problems(bad)
    assert any(p.startswith(f"{member}: sha256 differs") for p in found), found
    assert verify(bad)[0] == 1


def test_removed_and_added_files_are_named(bundle, tmp_path):
    bad = rewrite_zip(bundle, tmp_path / "bad.zip", {"terms/1.0.md": None, "extra.txt": b"hello"})
    found = problems(bad)
    assert "terms/1.0.md: missing but listed in the manifest" in found
    assert "extra.txt: not listed in the manifest" in found


def test_changing_the_manifest_breaks_its_signature(bundle, tmp_path):
    manifest = json.loads(read_member(bundle, "manifest.json"))
    manifest["record_count"] = 5
    bad = rewrite_zip(bundle, tmp_path / "bad.zip", {"manifest.json": json.dumps(manifest).encode()})
    found = problems(bad)
    assert found[0].startswith("manifest.sig: signature of manifest.json does not verify")
    assert "records.ndjson: 6 records, manifest.json says 5" in found


def test_one_altered_record_is_named_with_its_field(bundle, tmp_path):
    lines = read_member(bundle, "records.ndjson").decode().splitlines()
    record = json.loads(lines[2])
    record["action"] = "decline"
    lines[2] = json.dumps(record)
    bad = rewrite_zip(bundle, tmp_path / "bad.zip", {"records.ndjson": ("\n".join(lines) + "\n").encode()})
    found = problems(bad)
    assert "records.ndjson: sha256 differs from the manifest: the file was changed" in found
    assert "records.csv row 3 (record acme#3): field action differs from records.ndjson" in found
    assert (
        "records.ndjson line 3 (record acme#3): hash does not match the record's content: the record was altered"
        in found
    )


def test_a_rehashed_record_breaks_the_link_and_the_checkpoint(bundle, tmp_path):
    """Even a forger who recomputes the record's hash cannot keep the next link or the signed checkpoint."""
    from contracts.ledger.chain import compute_hash

    lines = [json.loads(line) for line in read_member(bundle, "records.ndjson").decode().splitlines()]
    forged = lines[5]
    forged["actor_email"] = "someone-else@example.com"
    body = {k: v for k, v in forged.items() if k not in ("prev_hash", "hash")}
    forged["hash"] = compute_hash(body, forged["prev_hash"])
    data = "".join(json.dumps(r) + "\n" for r in lines).encode()
    bad = rewrite_zip(bundle, tmp_path / "bad.zip", {"records.ndjson": data})
    found = problems(bad)
    assert (
        "records.ndjson line 6 (record acme#6): hash differs from signed checkpoint acme#6: history was rewritten"
        in found
    )
    assert any("records.csv row 6 (record acme#6): field actor_email, hash differs" in p for p in found), (
        found
    )


def test_a_removed_record_breaks_the_chain_link(bundle, tmp_path):
    lines = read_member(bundle, "records.ndjson").decode().splitlines()
    del lines[3]
    bad = rewrite_zip(bundle, tmp_path / "bad.zip", {"records.ndjson": ("\n".join(lines) + "\n").encode()})
    found = problems(bad)
    assert any(p.startswith("records.csv row 4 (record acme#5): field") for p in found), found


def test_a_bundle_signed_by_another_key_is_refused(bundle, tmp_path):
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    raw = read_member(bundle, "manifest.json")
    forged = base64.b64encode(Ed25519PrivateKey.generate().sign(raw)).decode()
    bad = rewrite_zip(bundle, tmp_path / "bad.zip", {"manifest.sig": forged.encode()})
    assert problems(bad)[0].startswith("manifest.sig: signature of manifest.json does not verify")


def test_rotated_key_signs_new_bundles_and_old_ones_still_verify(bundle, world, tmp_path):
    old_kid = json.loads(read_member(bundle, "manifest.json"))["key_id"]
    new_kid = signing.rotate("consent")
    fresh = tmp_path / "fresh.zip"
    manifest = bundle_bytes_to(fresh, world.org)
    assert manifest["key_id"] == new_kid != old_kid
    assert problems(fresh) == []
    assert problems(bundle) == []


def test_empty_range_gives_a_valid_empty_bundle(world, tmp_path):
    path = tmp_path / "empty.zip"
    manifest = bundle_bytes_to(path, world.org, exports.export_filters_parse({"from": "2030-01-01"}))
    assert manifest["record_count"] == 0 and manifest["first_seq"] is None
    assert read_member(path, "records.csv").decode().startswith("organization,seq,action")
    assert problems(path) == []


def test_filtered_bundle_verifies_and_carries_only_matching_records(bundle, world, tmp_path):
    path = tmp_path / "consents.zip"
    manifest = bundle_bytes_to(path, world.org, exports.export_filters_parse({"action": "consent"}))
    records = [json.loads(line) for line in read_member(path, "records.ndjson").decode().splitlines()]
    assert [r["seq"] for r in records] == [2, 5]
    assert manifest["filters"] == {"action": "consent"}
    assert problems(path) == []


def test_not_a_zip_is_reported_not_crashed(tmp_path):
    path = tmp_path / "x.zip"
    path.write_bytes(b"not a zip")
    assert "not a readable evidence bundle" in problems(path)[0]


def test_staff_bundle_of_every_organisation_verifies_chain_by_chain(bundle, tmp_path):
    path = tmp_path / "all.zip"
    manifest = bundle_bytes_to(path, None)
    assert manifest["organization"] == "*"
    assert {slug: info["count"] for slug, info in manifest["organizations"].items()} == {
        "acme": 6,
        "globex": 2,
    }
    assert problems(path) == []


def test_export_consents_command_writes_a_bundle_that_verify_export_accepts(bundle, tmp_path, capsys):
    out = tmp_path / "cmd.zip"
    call_command(
        "export_consents", "--org", "acme", "--format", "bundle", "--out", str(out), "--from", "2025-03-02"
    )
    assert "export #" in capsys.readouterr().out
    assert json.loads(read_member(out, "manifest.json"))["first_seq"] == 2
    assert verify(out)[0] == 0


def test_export_consents_command_refuses_bad_input_naming_it(world, tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="to"):
        call_command(
            "export_consents",
            "--org",
            "acme",
            "--format",
            "csv",
            "--out",
            str(tmp_path / "x"),
            "--to",
            "never",
        )
    with pytest.raises(CommandError, match="No organisation"):
        call_command("export_consents", "--org", "nobody", "--format", "csv", "--out", str(tmp_path / "x"))

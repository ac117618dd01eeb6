"""Backup and restore, proven with the documented scripts (docs/ops/backup.sh, restore.sh): the
restored database verifies, its checkpoints verify with the restored keys (and not without them),
and the portal serves from it what it served before."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import requires_postgres
from tests.processes import BASE_DIR, PortalServer, manage

pytestmark = [pytest.mark.postgres, requires_postgres]

SCRIPTS = BASE_DIR / "docs" / "ops"
CHECKPOINTS = (
    "from contracts.ledger.checkpoints import checkpoint_verify\n"
    "from contracts.models import LedgerCheckpoint\n"
    "rows = LedgerCheckpoint.objects.select_related('organization').order_by('pk')\n"
    "print(sum(1 for c in rows if checkpoint_verify(c)), rows.count())\n"
)


def script(name: str, *args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", str(SCRIPTS / name), *args], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def get(server: PortalServer, path: str, key: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    request = urllib.request.Request(server.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def test_a_backup_restored_into_a_new_database_verifies_and_serves(seeded_cluster, tmp_path):
    source = seeded_cluster.env(
        SIGNING_KEYS_DIR=str(seeded_cluster.var_dir / "keys"),
        MEDIA_ROOT=str(seeded_cluster.var_dir / "media"),
    )
    exports = seeded_cluster.var_dir / "media" / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    (exports / "consents-acme-bundle.zip").write_bytes(b"a built export")
    backups = tmp_path / "backups"
    folder = Path(script("backup.sh", str(backups), env=source).strip())
    assert sorted(p.name for p in folder.iterdir()) == [
        "SHA256SUMS", "database.dump", "exports.tar.gz", "signing-keys.tar.gz",
    ]  # fmt: skip

    # A new machine: an empty database and an empty folder for the keys and media.
    seeded_cluster.pg.sql("DROP DATABASE IF EXISTS restored")
    seeded_cluster.pg.sql("CREATE DATABASE restored")
    new_var = Path(tempfile.mkdtemp(prefix="vcp-restored-"))
    try:
        restored = seeded_cluster.env(
            "restored",
            VAR_DIR=str(new_var),
            SIGNING_KEYS_DIR=str(new_var / "keys"),
            MEDIA_ROOT=str(new_var / "media"),
            PYTHON=sys.executable,
        )
        out = script("restore.sh", str(folder), seeded_cluster.pg.url("restored"), env=restored)
        before = manage("verify_ledger", env=source).stdout
        assert out.strip() == before.strip() and "intact  org=acme" in out and "BROKEN" not in out
        assert (new_var / "media" / "exports" / "consents-acme-bundle.zip").read_bytes() == b"a built export"

        verified, total = map(int, manage("shell", "-v0", "-c", CHECKPOINTS, env=restored).stdout.split())
        assert total > 0 and verified == total
        # What losing the keys costs: the same checkpoints no longer verify.
        keyless = {**restored, "SIGNING_KEYS_DIR": str(new_var / "lost-keys")}
        assert manage("shell", "-v0", "-c", CHECKPOINTS, env=keyless).stdout.split() == ["0", str(total)]

        key = seeded_cluster.api_keys["acme"]
        server = PortalServer(restored, tmp_path / "restored.log")
        server.start()
        try:
            ready = get(server, "/readyz")
            resolved = get(server, "/api/v1/resolve/v1-chat/", key)
            pins = get(server, "/api/v1/pins/", key)
            verify = get(server, "/api/v1/consents/verify/", key)
        finally:
            server.stop()
        assert ready[1]["checks"]["database"]["status"] == "ok", ready
        served = seeded_cluster.pg.sql(
            "SELECT s.name FROM contracts_pin p JOIN contracts_alias a ON a.id = p.alias_id "
            "JOIN contracts_snapshot s ON s.id = p.snapshot_id JOIN contracts_organization o "
            "ON o.id = p.organization_id WHERE o.slug = 'acme' AND a.name = 'v1-chat'",
            "portal",
        )
        assert resolved[0] == 200 and resolved[1]["snapshot"]["id"] == served, resolved
        acme_pins = "SELECT count(*) FROM contracts_pin p JOIN contracts_organization o ON o.id = p.organization_id WHERE o.slug = 'acme'"
        assert pins[0] == 200 and len(pins[1]) == int(seeded_cluster.pg.sql(acme_pins, "portal"))
        assert verify[0] == 200 and verify[1]["intact"] is True, verify
    finally:
        shutil.rmtree(new_var, ignore_errors=True)

"""ReceiptSigner: the receipt format, verification by the documented rule, registration, keygen."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import stat
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from vcp_gateway import PortalRefused, ReceiptSigner

from tests.gateway.helpers import GATEWAY_KEY, verify_receipt

AT = dt.datetime(2026, 12, 2, 8, 0, 0, 123456, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def signer() -> ReceiptSigner:
    return ReceiptSigner.generate()


def sign(signer: ReceiptSigner, **overrides) -> dict:
    fields = {
        "org": "acme",
        "alias": "v1-chat",
        "snapshot": "chat-2025-09-29",
        "response_id": "chatcmpl-1",
        "at": AT,
    }
    return signer.sign(**{**fields, **overrides})


def test_receipt_format(signer):
    receipt = sign(signer)

    assert list(receipt) == ["v", "org", "alias", "snapshot", "response_id", "time", "key_id", "signature"]
    assert receipt["v"] == 1
    assert receipt["time"] == "2026-12-02T08:00:00.123456Z"
    assert receipt["key_id"] == signer.key_id


def test_a_receipt_verifies_by_the_documented_rule(signer):
    assert verify_receipt(sign(signer), signer.public_key_pem)
    assert verify_receipt(sign(signer, org="société-ünïcode", response_id="rés-✓"), signer.public_key_pem)


@pytest.mark.parametrize("field", ["org", "alias", "snapshot", "response_id", "time"])
def test_a_one_character_change_fails(signer, field):
    receipt = sign(signer)
    value = receipt[field]
    tampered = {**receipt, field: value[:-1] + ("0" if value[-1] != "0" else "1")}

    assert not verify_receipt(tampered, signer.public_key_pem)


def test_another_key_does_not_verify(signer):
    assert not verify_receipt(sign(signer), ReceiptSigner.generate().public_key_pem)


def test_key_id_is_gw_and_16_hex_digits_of_the_raw_public_key(signer):
    public_key = serialization.load_pem_public_key(signer.public_key_pem.encode())
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    assert signer.key_id == "gw-" + hashlib.sha256(raw).hexdigest()[:16]


def test_time_is_utc_with_microseconds_and_defaults_to_now(signer):
    paris = dt.timezone(dt.timedelta(hours=1))
    assert (
        sign(signer, at=dt.datetime(2026, 12, 2, 9, 0, tzinfo=paris))["time"] == "2026-12-02T08:00:00.000000Z"
    )

    before = dt.datetime.now(dt.UTC)
    stamped = dt.datetime.fromisoformat(sign(signer, at=None)["time"])
    assert before <= stamped <= dt.datetime.now(dt.UTC)


def test_refuses_nul_in_the_response_id_and_naive_times(signer):
    with pytest.raises(ValueError, match="NUL"):
        sign(signer, response_id="chatcmpl-\x00")
    with pytest.raises(ValueError, match="time-zone"):
        sign(signer, at=dt.datetime(2026, 12, 2, 8, 0))


def test_save_and_load(signer, tmp_path):
    path = tmp_path / "key.pem"
    signer.save(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS8
    loaded = ReceiptSigner.from_file(path)
    assert loaded.key_id == signer.key_id
    assert verify_receipt(sign(loaded), signer.public_key_pem)
    with pytest.raises(FileExistsError):
        ReceiptSigner.generate().save(path)
    assert ReceiptSigner.from_file(path).key_id == signer.key_id
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_from_file_refuses_other_key_types(tmp_path):
    path = tmp_path / "ec.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ValueError, match="not an Ed25519"):
        ReceiptSigner.from_file(path)


def test_register(portal, signer):
    first = signer.register(portal.url, GATEWAY_KEY)
    again = signer.register(portal.url, GATEWAY_KEY)

    assert first["key_id"] == again["key_id"] == signer.key_id
    assert [r.status for r in portal.requests_to("/api/v1/gateway/receipt-keys/", "POST")] == [201, 200]
    assert portal.receipt_keys[signer.key_id] == signer.public_key_pem
    portal.receipt_keys[signer.key_id] = ReceiptSigner.generate().public_key_pem
    with pytest.raises(PortalRefused) as conflict:
        signer.register(portal.url, GATEWAY_KEY)
    assert conflict.value.status == 409


def keygen(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "vcp_gateway", "keygen", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def test_keygen_cli(tmp_path):
    path = tmp_path / "receipt-key.pem"

    created = keygen("--out", str(path))

    assert created.returncode == 0, created.stderr
    key_id = re.search(r"^key-id: (gw-[0-9a-f]{16})$", created.stdout, re.M).group(1)
    signer = ReceiptSigner.from_file(path)
    assert key_id == signer.key_id
    assert signer.public_key_pem in created.stdout
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    refused = keygen("--out", str(path))
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert ReceiptSigner.from_file(path).key_id == key_id

    replaced = keygen("--out", str(path), "--force")
    assert replaced.returncode == 0, replaced.stderr
    assert ReceiptSigner.from_file(path).key_id != key_id
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

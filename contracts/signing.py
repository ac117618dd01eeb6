"""Ed25519 signing keys with key ids and rotation, for evidence bundles, checkpoints and receipts.

Keys come from the SIGNING_KEYS_DIR folder (one PEM private key per file, named <key id>.pem; the
newest by name signs, all of them verify), created on first use when the folder is empty. In
production the folder is a mounted secret; rotating means adding a newer key file.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.utils import timezone


def keys_dir(purpose: str) -> Path:
    base = Path(getattr(settings, "SIGNING_KEYS_DIR", settings.VAR_DIR / "keys"))
    path = base / purpose
    path.mkdir(parents=True, exist_ok=True)
    return path


def _load(purpose: str) -> dict[str, Ed25519PrivateKey]:
    folder = keys_dir(purpose)
    files = sorted(folder.glob("*.pem"))
    if not files:
        key_id = f"{purpose}-{timezone.now():%Y%m%d%H%M%S}"
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        (folder / f"{key_id}.pem").write_bytes(pem)
        files = [folder / f"{key_id}.pem"]
    return {path.stem: serialization.load_pem_private_key(path.read_bytes(), password=None) for path in files}


@lru_cache(maxsize=8)
def keyring(purpose: str) -> dict[str, Ed25519PrivateKey]:
    return _load(purpose)


def rotate(purpose: str) -> str:
    """Add a newer key; it signs from now on, older ones still verify."""
    key_id = f"{purpose}-{timezone.now():%Y%m%d%H%M%S%f}"
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (keys_dir(purpose) / f"{key_id}.pem").write_bytes(pem)
    keyring.cache_clear()
    return key_id


def current_key_id(purpose: str) -> str:
    return sorted(keyring(purpose))[-1]


def sign(purpose: str, payload: bytes) -> tuple[str, str]:
    """Sign with the newest key: returns (key id, base64 signature)."""
    key_id = current_key_id(purpose)
    signature = keyring(purpose)[key_id].sign(payload)
    return key_id, base64.b64encode(signature).decode()


def public_key(purpose: str, key_id: str) -> Ed25519PublicKey | None:
    key = keyring(purpose).get(key_id)
    return key.public_key() if key else None


def public_key_pem(purpose: str, key_id: str | None = None) -> str:
    key = public_key(purpose, key_id or current_key_id(purpose))
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def verify(purpose: str, key_id: str, payload: bytes, signature_b64: str) -> bool:
    key = public_key(purpose, key_id)
    if key is None:
        return False
    try:
        key.verify(base64.b64decode(signature_b64, validate=True), payload)
    except (InvalidSignature, ValueError):
        return False
    return True

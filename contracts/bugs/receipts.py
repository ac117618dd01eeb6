"""Output receipts: a small Ed25519 signature the serving layer attaches to every response.

Serving gateways sign the same receipts with their own registered Ed25519 keys (key ids `gw-…`,
contracts.gateway); they verify here exactly like the portal's own.

A receipt names the organisation, the alias it called, the snapshot that answered, the response id
and the instant, signed with the newest key of the "receipts" keyring and carrying that key's id.
Keys rotate (contracts.signing.rotate); receipts signed by an older key keep verifying as long as
that key file is kept.

    receipt = receipt_issue(organization=org, alias="v1-chat", snapshot=snapshot,
                            response_id="resp_123", at=timezone.now())
    payload = receipt_verify(receipt)   # raises ApplicationError when forged or altered
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from contracts import signing
from contracts.canonical import canonical_json
from contracts.errors import ApplicationError
from contracts.gateway.services import receipt_public_key, signature_valid
from contracts.models import Alias, Organization, Snapshot

PURPOSE = "receipts"
GATEWAY_KEY_ID_PREFIX = "gw-"
VERSION = 1
PAYLOAD_FIELDS = ("v", "org", "alias", "snapshot", "response_id", "time")
RECEIPT_FIELDS = (*PAYLOAD_FIELDS, "key_id", "signature")
MAX_FIELD_CHARS = 200


def _instant(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("A receipt time must be time-zone aware.")
    return at.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _name(value: Organization | Alias | Snapshot | str, attr: str) -> str:
    return value if isinstance(value, str) else getattr(value, attr)


def receipt_issue(
    *,
    org: Organization | str,
    alias: Alias | str,
    snapshot: Snapshot | str,
    response_id: str,
    at: dt.datetime,
) -> dict[str, Any]:
    """Sign what served one response. Returns a JSON-ready dict to embed in the response."""
    if "\x00" in str(response_id):
        raise ValueError("A response id cannot contain NUL characters.")
    payload = {
        "v": VERSION,
        "org": _name(org, "slug"),
        "alias": _name(alias, "name"),
        "snapshot": _name(snapshot, "name"),
        "response_id": str(response_id),
        "time": _instant(at),
    }
    key_id, signature = signing.sign(PURPOSE, canonical_json(payload))
    return {**payload, "key_id": key_id, "signature": signature}


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(message, fields={"receipt": message}, code="invalid_receipt")


def receipt_verify(receipt: Any) -> dict[str, Any]:
    """The signed payload of a genuine receipt (with `time` parsed); ApplicationError otherwise.

    Refused: anything not shaped like a receipt, an unknown key id, extra or missing fields, and any
    change to a signed field (the signature no longer matches).
    """
    if not isinstance(receipt, dict):
        raise _refuse("A receipt is a JSON object as issued with the response.")
    keys = set(receipt)
    if keys != set(RECEIPT_FIELDS):
        missing = sorted(set(RECEIPT_FIELDS) - keys)
        extra = sorted(keys - set(RECEIPT_FIELDS))
        detail = "; ".join(
            part
            for part in (
                f"missing {', '.join(missing)}" if missing else "",
                f"unexpected {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise _refuse(f"Not a receipt as issued ({detail}).")
    if receipt["v"] != VERSION or isinstance(receipt["v"], bool):
        raise _refuse(f"Unknown receipt version {receipt['v']!r}; expected {VERSION}.")
    for field in RECEIPT_FIELDS[1:]:
        value = receipt[field]
        if not isinstance(value, str) or not value or len(value) > MAX_FIELD_CHARS or "\x00" in value:
            raise _refuse(
                f"Receipt field {field!r} must be a non-empty string of at most {MAX_FIELD_CHARS} characters."
            )
    payload = {field: receipt[field] for field in PAYLOAD_FIELDS}
    if receipt["key_id"].startswith(GATEWAY_KEY_ID_PREFIX):
        return _verify_gateway_receipt(receipt, payload)
    if not signing.verify(PURPOSE, receipt["key_id"], canonical_json(payload), receipt["signature"]):
        if signing.public_key(PURPOSE, receipt["key_id"]) is None:
            raise _refuse(
                f"Receipt signed with unknown key {receipt['key_id']!r}: forged or not issued here."
            )
        raise _refuse("Receipt signature does not match its contents: it was forged or altered.")
    at = _signed_time(payload)
    return {**payload, "time": at, "key_id": receipt["key_id"], "signer": "portal", "key_revoked_at": None}


def _signed_time(payload: dict[str, Any]) -> dt.datetime:
    try:
        at = dt.datetime.fromisoformat(payload["time"].replace("Z", "+00:00"))
    except ValueError as exc:  # signed, so only a bug of the signer could get here
        raise _refuse("Receipt time is not an ISO 8601 instant.") from exc
    if at.tzinfo is None:
        raise _refuse("Receipt time has no time zone.")
    return at


def _verify_gateway_receipt(receipt: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """A receipt signed by a serving gateway's registered key (docs/data-plane.md, "Receipts").

    Exactly the portal's format and checks; in addition a revoked key id verifies only receipts it
    signed before its revocation, and the refusal says when it was revoked."""
    found = receipt_public_key(receipt["key_id"])
    if found is None:
        raise _refuse(f"Receipt signed with unknown key {receipt['key_id']!r}: no gateway registered it.")
    public_key, key = found
    if not signature_valid(public_key, canonical_json(payload), receipt["signature"]):
        raise _refuse("Receipt signature does not match its contents: it was forged or altered.")
    at = _signed_time(payload)
    revoked_at = key.revoked_at
    if revoked_at is not None and at >= revoked_at:
        raise _refuse(
            f"Receipt signed with gateway key {key.key_id} (gateway {key.gateway.name}) at {payload['time']}, "
            f"after that key was revoked at {_instant(revoked_at)}: it no longer vouches for anything."
        )
    return {
        **payload,
        "time": at,
        "key_id": receipt["key_id"],
        "signer": f"gateway:{key.gateway.name}",
        "key_revoked_at": revoked_at,
    }

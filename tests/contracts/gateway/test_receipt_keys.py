"""Gateway receipt keys: registration, receipts that verify and resolve bug reports like the
portal's own, and revocation that stops receipts signed after it (saying so)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from vcp_gateway import ReceiptSigner

from contracts.gateway import services
from contracts.models import GatewayReceiptKey

KEYS = "/api/v1/gateway/receipt-keys/"
VERIFY = "/api/v1/receipts/verify/"


def register(api, gateway, signer):
    return api.post(KEYS, {"key_id": signer.key_id, "public_key": signer.public_key_pem}, key=gateway.raw_key)


def test_register_is_201_then_200_and_another_key_under_the_id_is_409(api, world, gateway):
    signer = ReceiptSigner.generate()
    first = register(api, gateway, signer)
    assert first.status_code == 201, first.content
    assert first.json()["key_id"] == signer.key_id and first.json()["gateway"] == "edge-1"
    assert register(api, gateway, signer).status_code == 200
    other = ReceiptSigner.generate()
    response = api.post(
        KEYS, {"key_id": signer.key_id, "public_key": other.public_key_pem}, key=gateway.raw_key
    )
    assert response.status_code == 400  # the id is not this key's id
    assert "key_id" in response.json()["error"]["fields"]
    assert GatewayReceiptKey.objects.count() == 1


def test_register_refuses_garbage_and_org_keys(api, world, gateway):
    bad = api.post(KEYS, {"key_id": "gw-0123456789abcdef", "public_key": "not pem"}, key=gateway.raw_key)
    assert bad.status_code == 400 and "public_key" in bad.json()["error"]["fields"]
    signer = ReceiptSigner.generate()
    assert register(api, type("G", (), {"raw_key": world.key})(), signer).status_code == 403


def test_gateway_receipt_verifies_and_files_a_bug_report_like_the_portals_own(api, world, gateway):
    signer = ReceiptSigner.generate()
    register(api, gateway, signer)
    receipt = signer.sign(org="acme", alias="v1-chat", snapshot=world.old.name, response_id="chatcmpl-1")
    response = api.post(VERIFY, {"receipt": receipt}, key=world.key)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["valid"] is True and body["signer"] == "gateway:edge-1" and body["key_revoked_at"] is None
    assert body["snapshot"]["id"] == world.old.name
    bug = api.post("/api/v1/bug-reports/", {"receipt": receipt, "output": "wrong"}, key=world.key)
    assert bug.status_code == 201, bug.content
    assert bug.json()["snapshot"]["id"] == world.old.name and bug.json()["resolved_by"] == "receipt"


def test_an_altered_gateway_receipt_is_refused(api, world, gateway):
    signer = ReceiptSigner.generate()
    register(api, gateway, signer)
    receipt = signer.sign(org="acme", alias="v1-chat", snapshot=world.old.name, response_id="r")
    receipt["snapshot"] = world.current.name
    response = api.post(VERIFY, {"receipt": receipt}, key=world.key)
    assert response.status_code == 400 and "forged or altered" in response.json()["error"]["message"]
    unknown = ReceiptSigner.generate().sign(org="acme", alias="v1-chat", snapshot="x", response_id="r")
    response = api.post(VERIFY, {"receipt": unknown}, key=world.key)
    assert response.status_code == 400 and "no gateway registered it" in response.json()["error"]["message"]


def test_revoked_key_stops_receipts_signed_after_revocation_and_says_so(api, world, gateway):
    signer = ReceiptSigner.generate()
    register(api, gateway, signer)
    before = signer.sign(org="acme", alias="v1-chat", snapshot=world.old.name, response_id="before")
    key = GatewayReceiptKey.objects.get(key_id=signer.key_id)
    revoked_at = timezone.now()
    services.receipt_key_revoke(key=key, at=revoked_at)
    after = signer.sign(
        org="acme",
        alias="v1-chat",
        snapshot=world.old.name,
        response_id="after",
        at=revoked_at + dt.timedelta(seconds=1),
    )
    refused = api.post(VERIFY, {"receipt": after}, key=world.key)
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "revoked" in message and signer.key_id in message
    still = api.post(VERIFY, {"receipt": before}, key=world.key)
    assert still.status_code == 200 and still.json()["key_revoked_at"] is not None
    # Registering a revoked key id again does not bring it back.
    assert register(api, gateway, signer).status_code == 409


def test_revoking_the_gateway_revokes_its_receipt_keys(api, world, gateway):
    signer = ReceiptSigner.generate()
    register(api, gateway, signer)
    services.gateway_revoke(gateway=gateway)
    assert GatewayReceiptKey.objects.get(key_id=signer.key_id).revoked_at is not None
    receipt = signer.sign(org="acme", alias="v1-chat", snapshot=world.old.name, response_id="late")
    assert api.post(VERIFY, {"receipt": receipt}, key=world.key).status_code == 400

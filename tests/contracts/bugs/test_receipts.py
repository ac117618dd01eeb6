from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import signing
from contracts.bugs import receipts
from contracts.bugs.receipts import receipt_issue, receipt_verify
from contracts.errors import ApplicationError
from contracts.models import BugReport
from tests import factories as f

AT = dt.datetime(2025, 10, 1, 9, 30, 15, 123456, tzinfo=dt.UTC)


def issue(**overrides):
    values = {
        "org": "acme",
        "alias": "v1-chat",
        "snapshot": "chat-2025-01-01",
        "response_id": "resp_1",
        "at": AT,
    }
    values.update(overrides)
    return receipt_issue(**values)


def test_issued_receipt_verifies_to_its_signed_payload(signing_keys):
    receipt = issue()
    payload = receipt_verify(receipt)
    assert payload["org"] == "acme"
    assert payload["alias"] == "v1-chat"
    assert payload["snapshot"] == "chat-2025-01-01"
    assert payload["response_id"] == "resp_1"
    assert payload["time"] == AT
    assert payload["key_id"] == receipt["key_id"] == signing.current_key_id("receipts")


def test_receipt_time_is_stored_in_utc_whatever_the_zone_given(signing_keys):
    paris = dt.timezone(dt.timedelta(hours=2))
    receipt = issue(at=AT.astimezone(paris))
    assert receipt["time"] == "2025-10-01T09:30:15.123456Z"


def test_naive_time_cannot_be_signed(signing_keys):
    with pytest.raises(ValueError):
        issue(at=AT.replace(tzinfo=None))


@pytest.mark.parametrize(
    "field, value",
    [
        ("org", "globex"),
        ("alias", "chat-latest"),
        ("snapshot", "chat-2025-06-01"),
        ("response_id", "resp_2"),
        ("time", "2025-10-01T09:30:16.123456Z"),
    ],
)
def test_altering_any_signed_field_is_refused(signing_keys, field, value):
    receipt = issue()
    receipt[field] = value
    with pytest.raises(ApplicationError) as exc:
        receipt_verify(receipt)
    assert "forged or altered" in exc.value.message
    assert "receipt" in exc.value.fields


def test_signature_from_a_key_not_ours_is_refused(signing_keys):
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    receipt = issue()
    payload = {k: receipt[k] for k in receipts.PAYLOAD_FIELDS}
    foreign = Ed25519PrivateKey.generate().sign(receipts.canonical_json(payload))
    receipt["signature"] = base64.b64encode(foreign).decode()
    with pytest.raises(ApplicationError):
        receipt_verify(receipt)


def test_unknown_key_id_is_refused_naming_the_key(signing_keys):
    receipt = issue()
    receipt["key_id"] = "receipts-19990101000000"
    with pytest.raises(ApplicationError) as exc:
        receipt_verify(receipt)
    assert "receipts-19990101000000" in exc.value.message


def test_extra_or_missing_fields_are_refused(signing_keys):
    receipt = issue()
    with pytest.raises(ApplicationError, match="unexpected extra"):
        receipt_verify({**receipt, "extra": "x"})
    del receipt["response_id"]
    with pytest.raises(ApplicationError, match="missing response_id"):
        receipt_verify(receipt)


def test_rotation_signs_with_the_new_key_and_old_receipts_keep_verifying(signing_keys):
    old = issue()
    new_key = signing.rotate("receipts")
    new = issue(response_id="resp_2")
    assert new["key_id"] == new_key != old["key_id"]
    assert receipt_verify(old)["key_id"] == old["key_id"]
    assert receipt_verify(new)["key_id"] == new_key


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=8)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=json_values)
def test_any_json_that_is_not_a_receipt_is_refused_cleanly(signing_keys, value):
    with pytest.raises(ApplicationError):
        receipt_verify(value)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(receipts.RECEIPT_FIELDS), replacement=json_values)
def test_replacing_any_field_with_any_other_value_is_refused(signing_keys, field, replacement):
    receipt = issue()
    if replacement == receipt[field]:
        return
    receipt[field] = replacement
    with pytest.raises(ApplicationError):
        receipt_verify(receipt)


# --------------------------------------------------------------------------------------------
# POST /api/v1/receipts/verify/
# --------------------------------------------------------------------------------------------

URL = "/api/v1/receipts/verify/"


@pytest.mark.django_db
def test_verify_endpoint_resolves_a_genuine_receipt_to_its_snapshot(world, api, signing_keys):
    receipt = issue(org=world.org, snapshot=world.old, at=f.days(-3))
    response = api.post(URL, {"receipt": receipt}, key=world.key)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["valid"] is True
    assert body["snapshot"]["id"] == world.old.name
    assert body["key_id"] == receipt["key_id"]
    assert body["organization"] == world.org.slug


@pytest.mark.django_db
def test_verify_endpoint_refuses_an_altered_receipt(world, api, signing_keys):
    receipt = issue(org=world.org, snapshot=world.old, at=f.days(-3))
    receipt["snapshot"] = world.current.name
    response = api.post(URL, {"receipt": receipt}, key=world.key)
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["receipt"].endswith("forged or altered.")


@pytest.mark.django_db
def test_verify_endpoint_refuses_another_organisations_receipt(world, api, signing_keys):
    receipt = issue(org=world.org, snapshot=world.old, at=f.days(-3))
    response = api.post(URL, {"receipt": receipt}, key=world.other_key)
    assert response.status_code == 400
    assert "another organisation" in response.json()["error"]["message"]
    assert BugReport.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("body", [{}, {"receipt": None}, {"receipt": []}, {"receipt": "x"}, {"receipt": 7}])
def test_verify_endpoint_answers_400_to_anything_that_is_not_a_receipt(world, api, signing_keys, body):
    response = api.post(URL, body, key=world.key)
    assert response.status_code == 400
    assert response.json()["error"]["fields"]


@pytest.mark.django_db
def test_verify_endpoint_needs_authentication(world, api, signing_keys):
    assert api.post(URL, {"receipt": issue()}).status_code in (401, 403)

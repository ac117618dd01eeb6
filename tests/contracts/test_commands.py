"""The management commands of the public interface (docs/api.md, README): seed_demo and create_api_key."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from contracts.models import AliasMove, ConsentRecord, Membership, Organization, Pin, PinChange, Snapshot

pytestmark = pytest.mark.django_db

LOGIN = re.compile(r"^login: (\S+) (\S+) org=(\S+) role=(\S+)$")
API_KEY = re.compile(r"^api-key: (vcp_\S+) org=(\S+)$")


def run(*args, **kwargs) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue().splitlines()


def counts() -> dict[str, int]:
    return {
        m.__name__: m.objects.count()
        for m in (Organization, Membership, Snapshot, Pin, PinChange, AliasMove, ConsentRecord)
    }


def test_seed_demo_is_idempotent_and_prints_logins_and_one_key_per_organisation(client):
    first = run("seed_demo")
    before = counts()
    second = run("seed_demo")
    assert counts() == before
    assert [line for line in first if LOGIN.match(line) or API_KEY.match(line)] == [
        line for line in second if LOGIN.match(line) or API_KEY.match(line)
    ]
    keys = dict(API_KEY.match(line).group(2, 1) for line in second if API_KEY.match(line))
    assert set(keys) == {"acme", "globex", "initech"}
    roles = {LOGIN.match(line).group(4) for line in second if LOGIN.match(line)}
    assert {"admin", "member", "legal"} <= roles
    # Every lifecycle state is in the demo catalog, and every upgrade policy among the pins.
    assert {s.status for s in Snapshot.objects.all()} >= {
        "preview",
        "active",
        "deprecated",
        "retired",
        "purged",
    }
    assert set(Pin.objects.values_list("policy", flat=True)) == {"manual", "follow", "on-retirement"}
    # The printed key and login work.
    response = client.get("/api/v1/pins/", HTTP_AUTHORIZATION=f"Bearer {keys['acme']}")
    assert response.status_code == 200 and response.json()
    user, password = next(
        LOGIN.match(line).group(1, 2)
        for line in second
        if LOGIN.match(line) and "org=acme role=admin" in line
    )
    assert client.login(username=user, password=password)


def test_create_api_key_prints_a_key_that_authenticates(world, client):
    (raw,) = run("create_api_key", "--org", "acme", "--name", "ci")
    response = client.get("/api/v1/pins/", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200
    assert [pin["alias"] for pin in response.json()] == ["v1-chat"]


def test_create_api_key_for_an_unknown_organisation_fails_and_writes_nothing(world):
    from contracts.models import ApiKey

    before = ApiKey.objects.count()
    with pytest.raises(CommandError, match="No organisation"):
        run("create_api_key", "--org", "nope", "--name", "ci")
    assert ApiKey.objects.count() == before

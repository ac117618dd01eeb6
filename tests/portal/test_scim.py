"""SCIM 2.0 at /scim/v2/: per-organisation tokens, isolation (404), deprovisioning, groups as roles,
RFC 7644 error documents for every malformed request (never a 5xx); the commands that mint tokens."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management import call_command

from contracts.identity import provisioning
from contracts.ledger.chain import ledger_append
from contracts.models import (
    AuditAction,
    AuditEntry,
    ConsentRecord,
    LedgerAction,
    Membership,
    Role,
    ScimGroup,
    ScimUser,
)

pytestmark = pytest.mark.django_db

SCIM = "application/scim+json"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def scim(client):
    class Scim:
        def __init__(self):
            self.token = None

        def call(self, method, path, body=None, token=None, raw=None):
            token = token or self.token
            headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
            data = raw if raw is not None else (json.dumps(body) if body is not None else "")
            return getattr(client, method)(f"/scim/v2/{path}", data=data, content_type=SCIM, **headers)

    return Scim()


@pytest.fixture
def tokens(world):
    _t, acme = provisioning.scim_token_create(org=world.org, name="Acme IdP")
    _t, globex = provisioning.scim_token_create(org=world.other_org, name="Globex IdP")
    return acme, globex


def _user(user_name, email, active=True, **extra):
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "emails": [{"value": email, "primary": True}],
        "name": {"givenName": "Dana", "familyName": "Scully"},
        "active": active,
        **extra,
    }


def test_provisioning_creates_a_member_with_the_default_role(scim, tokens, world):
    scim.token = tokens[0]
    response = scim.call("post", "Users", _user("dana", "dana@acme.example", externalId="okta-1"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["userName"] == "dana" and body["active"] is True and body["externalId"] == "okta-1"
    assert response["Location"].endswith(f"/scim/v2/Users/{body['id']}")
    user = get_user_model().objects.get(username="dana")
    assert not user.has_usable_password()
    assert Membership.objects.get(user=user, organization=world.org).role == Role.MEMBER
    entry = AuditEntry.objects.get(action=AuditAction.SCIM_USER_PROVISION)
    assert entry.actor_kind == "scim-token" and entry.actor_label.startswith("scim-token:scim_")

    listed = scim.call("get", 'Users?filter=userName eq "dana"').json()
    assert listed["totalResults"] == 1 and listed["Resources"][0]["id"] == body["id"]


def test_one_organisations_token_never_reads_or_writes_anothers_users(scim, tokens, world):
    scim.token = tokens[0]
    dana = scim.call("post", "Users", _user("dana", "dana@acme.example")).json()
    group = scim.call("post", "Groups", {"displayName": "Legal", "members": [{"value": dana["id"]}]}).json()
    scim.token = tokens[1]
    for path in (f"Users/{dana['id']}", f"Groups/{group['id']}"):
        assert scim.call("get", path).status_code == 404
        assert (
            scim.call("put", path, _user("x", "x@globex.example") | {"displayName": "x"}).status_code == 404
        )
        patch = {"Operations": [{"op": "replace", "path": "active", "value": False}]}
        assert scim.call("patch", path, patch).status_code == 404
        assert scim.call("delete", path).status_code == 404
    assert scim.call("get", "Users").json()["totalResults"] == 0
    assert scim.call("get", 'Users?filter=userName eq "dana"').json()["totalResults"] == 0
    # Globex cannot adopt Acme's person by naming them either.
    taken = scim.call("post", "Users", _user("acme-admin", "acme-admin@example.com"))
    assert taken.status_code == 409 and taken.json()["scimType"] == "uniqueness"
    assert Membership.objects.get(user__username="dana", organization=world.org)
    assert not Membership.objects.filter(user__username="acme-admin", organization=world.other_org).exists()


def test_no_token_or_a_session_is_refused_with_an_error_document(client, scim, world, tokens):
    response = scim.call("get", "Users")
    assert response.status_code == 401 and ERROR in response.json()["schemas"]
    assert response["WWW-Authenticate"] == 'Bearer realm="scim"'
    client.force_login(world.admin)
    assert scim.call("get", "Users").status_code == 401
    assert scim.call("get", "Users", token="scim_not-a-token").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "raw"),
    [
        ("post", "Users", "{not json"),
        ("post", "Users", "[1, 2]"),
        ("post", "Users", '"a string"'),
        ("post", "Users", json.dumps({"userName": 42})),
        ("post", "Users", json.dumps({"userName": "x", "active": "yes"})),
        ("post", "Users", json.dumps({"userName": "x", "emails": "x@acme.example"})),
        ("post", "Users", json.dumps({"userName": "x", "name": ["a"]})),
        ("post", "Users", json.dumps({"userName": "x" * 200})),
        ("post", "Users", json.dumps({})),
        ("post", "Groups", json.dumps({"displayName": "G", "members": "everyone"})),
        ("post", "Groups", json.dumps({"displayName": "G", "members": [{"value": "not-a-user"}]})),
        ("post", "Groups", json.dumps({"members": []})),
        ("get", "Users?startIndex=0", None),
        ("get", "Users?count=-3", None),
        ("get", "Users?count=abc", None),
        ("get", 'Users?filter=userName eq "unterminated', None),
        ("get", "Users/not-a-uuid", None),
        ("get", "Users/00000000-0000-0000-0000-000000000000", None),
        ("get", "Nope", None),
        ("post", ".search", "{}"),
        ("post", "Bulk", "{}"),
    ],
)
def test_malformed_requests_answer_error_documents_and_write_nothing(scim, tokens, method, path, raw):
    scim.token = tokens[0]
    before = (ScimUser.objects.count(), ScimGroup.objects.count(), get_user_model().objects.count())
    response = scim.call(method, path, raw=raw)
    assert 400 <= response.status_code < 500 or response.status_code == 501, (
        response.status_code,
        response.content,
    )
    assert ERROR in response.json()["schemas"]
    assert (ScimUser.objects.count(), ScimGroup.objects.count(), get_user_model().objects.count()) == before


@pytest.mark.parametrize(
    "operations",
    [
        "replace everything",
        [{"op": "explode", "path": "active"}],
        [{"op": "remove"}],
        [{"op": "replace", "value": "not an object"}],
        [{"op": "replace", "path": 7, "value": 1}],
        [{"op": "replace", "path": "active", "value": "no"}],
        [{"op": "add", "path": 'emails[type eq "work"]', "value": "x"}],
        ["not an operation"],
    ],
)
def test_malformed_patch_is_refused_and_changes_nothing(scim, tokens, operations):
    scim.token = tokens[0]
    dana = scim.call("post", "Users", _user("dana", "dana@acme.example")).json()
    response = scim.call("patch", f"Users/{dana['id']}", {"schemas": [], "Operations": operations})
    assert response.status_code == 400, response.content
    assert ERROR in response.json()["schemas"]
    assert scim.call("get", f"Users/{dana['id']}").json() == dana | {"meta": dana["meta"]}


def test_deprovisioning_ends_membership_and_sessions_but_keeps_the_ledger(
    client, scim, tokens, world, django_capture_on_commit_callbacks
):
    scim.token = tokens[0]
    dana = scim.call("post", "Users", _user("dana", "dana@acme.example")).json()
    user = get_user_model().objects.get(username="dana")
    ledger_append(org=world.org, action=LedgerAction.BASELINE, acting_user=user)
    client.force_login(user)
    assert Session.objects.count() == 1

    patch = {"Operations": [{"op": "replace", "value": {"active": False}}]}
    with django_capture_on_commit_callbacks(execute=True):
        response = scim.call("patch", f"Users/{dana['id']}", patch)
    assert response.status_code == 200 and response.json()["active"] is False
    assert not Membership.objects.filter(user=user).exists()
    assert Session.objects.count() == 0
    assert ConsentRecord.objects.filter(actor=user).count() == 1
    assert AuditEntry.objects.filter(
        action=AuditAction.SCIM_USER_DEPROVISION, organization=world.org
    ).exists()

    # Reactivated: a member again. Deleted: gone from SCIM, the account and ledger stay.
    scim.call(
        "patch", f"Users/{dana['id']}", {"Operations": [{"op": "replace", "path": "active", "value": True}]}
    )
    assert Membership.objects.filter(user=user, organization=world.org).exists()
    assert scim.call("delete", f"Users/{dana['id']}").status_code == 204
    assert scim.call("get", f"Users/{dana['id']}").status_code == 404
    assert not Membership.objects.filter(user=user).exists()
    assert (
        get_user_model().objects.filter(pk=user.pk).exists()
        and ConsentRecord.objects.filter(actor=user).exists()
    )


def test_groups_map_to_roles_and_the_last_admin_is_kept(scim, tokens, world):
    scim.token = tokens[0]
    dana = scim.call("post", "Users", _user("dana", "dana@acme.example")).json()
    admins = scim.call("post", "Groups", {"displayName": "Admins", "members": [{"value": dana["id"]}]})
    assert admins.status_code == 201, admins.content
    assert Membership.objects.get(user__username="dana", organization=world.org).role == Role.ADMIN
    legal = scim.call("post", "Groups", {"displayName": "Legal", "members": []}).json()
    add = {"Operations": [{"op": "add", "path": "members", "value": [{"value": dana["id"]}]}]}
    assert scim.call("patch", f"Groups/{legal['id']}", add).status_code == 200
    assert (
        Membership.objects.get(user__username="dana", organization=world.org).role == Role.ADMIN
    )  # highest wins

    # Dana is now one of two admins; take acme-admin out of the picture and dana is the last one.
    Membership.objects.filter(user=world.admin, organization=world.org).update(role=Role.MEMBER)
    remove = {"Operations": [{"op": "remove", "path": f'members[value eq "{dana["id"]}"]'}]}
    response = scim.call("patch", f"Groups/{admins.json()['id']}", remove)
    assert response.status_code == 409 and ERROR in response.json()["schemas"]
    assert Membership.objects.get(user__username="dana", organization=world.org).role == Role.ADMIN
    assert len(scim.call("get", f"Groups/{admins.json()['id']}").json()["members"]) == 1


def test_create_scim_token_command_prints_a_working_token(scim, world):
    out = io.StringIO()
    call_command("create_scim_token", "--org", "acme", stdout=out)
    match = re.fullmatch(r"scim-token: (scim_\S+) org=acme\n", out.getvalue())
    assert match
    assert scim.call("get", "Users", token=match.group(1)).status_code == 200


def test_seed_demo_prints_a_scim_token_per_demo_organisation_every_run(scim):
    lines = []
    for _ in range(2):
        out = io.StringIO()
        call_command("seed_demo", stdout=out)
        lines.append([line for line in out.getvalue().splitlines() if line.startswith("scim-token: ")])
    assert lines[0] == lines[1] and len(lines[0]) == 3
    token, _org = re.fullmatch(r"scim-token: (\S+) org=(\S+)", lines[0][0]).groups()
    assert scim.call("get", "ServiceProviderConfig", token=token).json()["patch"]["supported"] is True

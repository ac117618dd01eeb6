"""Tenancy, proven by walking every URL pattern of the project; and the attack walk over every API route.

Organisation B (a foreign user session and a foreign API key) asks for every URL filled with objects
of organisation A. Every URL that names an object of A must answer 404 (405 for a method the view
does not take); every other URL must answer without a server error and without any of A's data.
A view added later is covered without anyone remembering to: a URL kwarg this file does not know
fails the test, naming the kwarg to register below.

The attack walk (issue #15) sends every API route, as its own organisation's key, malformed path
parameters, deeply nested JSON, JSON that is not an object, oversized bodies, control characters
and malformed query parameters, and asserts: never a 5xx, always the JSON error envelope, and
nothing written (the rows of every model are counted before and after each route).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern

pytestmark = pytest.mark.django_db


def _victim_webhook(w):
    from notifications.models import WebhookEndpoint

    endpoint, _ = WebhookEndpoint.objects.get_or_create(
        organization=w.org,
        url="https://hooks.acme.example/victim",
        defaults={"events": ["snapshot.deprecated"], "secret": "whsec_dmljdGltLXNlY3JldC0xMjM0"},
    )
    return endpoint


def _victim_contact(w):
    from notifications.models import Contact

    contact, _ = Contact.objects.get_or_create(organization=w.org, email="victim-contact@acme.example")
    return contact


def _victim_export(w):
    from contracts.models import ConsentExport

    export, _ = ConsentExport.objects.get_or_create(
        organization=w.org, format="bundle", defaults={"filters": {}}
    )
    return export


def _victim_bug_report(w):
    from contracts.bugs.services import bug_report_file
    from tests.factories import days

    return bug_report_file(org=w.org, reporter=w.admin, alias=w.alias.name, observed_at=days(-5))


def _victim_invitation(w):
    from contracts.identity.services import invitation_create

    invitation = w.org.invitations.first()
    return (
        invitation
        or invitation_create(
            org=w.org, email="victim-invitee@acme.example", role="admin", acting_user=w.admin
        )[0]
    )


def _victim_domain(w):
    from contracts.models import OrgDomain
    from tests.factories import days

    domain, _ = OrgDomain.objects.get_or_create(
        domain="victim.acme.example", defaults={"organization": w.org, "created_at": days(-1)}
    )
    return domain


def _victim_passkey(w):
    from allauth.mfa.models import Authenticator

    passkey, _ = Authenticator.objects.get_or_create(
        user=w.admin,
        type=Authenticator.Type.WEBAUTHN,
        defaults={"data": {"name": "victim key", "credential": {}}},
    )
    return passkey


def _victim_scim(w):
    from contracts.identity import provisioning
    from contracts.models import ScimGroup, ScimToken

    token = (
        ScimToken.objects.filter(organization=w.org).first() or provisioning.scim_token_create(org=w.org)[0]
    )
    group = ScimGroup.objects.filter(organization=w.org).first() or provisioning.scim_group_save(
        org=w.org, group=None, display_name="Victim group", member_ids=[]
    )
    return token, group


# URL kwarg -> function(world, victim objects) giving a value that names an object of the victim
# organisation (world.org). Register every new kwarg here, creating the victim's object if needed.
def _victim_eval_result(w):
    from contracts.models import EvalResult, EvalSuite

    suite, _ = EvalSuite.objects.get_or_create(
        slug="victim-private", defaults={"name": "Victim", "owner": w.org}
    )
    result, _ = EvalResult.objects.get_or_create(
        suite=suite, snapshot=w.old, defaults={"scores": {"accuracy": {"score": 0.9}}}
    )
    return result


def _victim_eval_run(w):
    from contracts.models import EvalRun, EvalSuite

    suite, _ = EvalSuite.objects.get_or_create(
        slug="victim-private", defaults={"name": "Victim", "owner": w.org}
    )
    run, _ = EvalRun.objects.get_or_create(organization=w.org, suite=suite, snapshot=w.old)
    return run


def _victim_audit_pack(w):
    from contracts.models import AuditPack

    pack, _ = AuditPack.objects.get_or_create(organization=w.org, defaults={"aliases": ["v1-chat"]})
    return pack


def _victim_migration(w):
    from contracts.consent.services import migration_propose

    return migration_propose(pin=w.pin, to_snapshot=w.current)


VICTIM_VALUES: dict[str, Callable] = {
    "org": lambda w: w.org.slug,
    "webhook_id": lambda w: str(_victim_webhook(w).pk),
    "contact_id": lambda w: str(_victim_contact(w).pk),
    "snapshot_id": lambda w: w.old.name,
    "name": lambda w: w.alias.name,
    "alias": lambda w: w.alias.name,
    "pin_id": lambda w: str(w.pin.pk),
    "migration_id": lambda w: str(_victim_migration(w).pk),
    "a": lambda w: w.old.name,
    "b": lambda w: w.current.name,
    "result_id": lambda w: str(_victim_eval_result(w).pk),
    "key_id": lambda w: str(w.org.api_keys.order_by("pk").first().pk),
    "report_id": lambda w: str(_victim_bug_report(w).pk),
    "export_id": lambda w: str(_victim_export(w).pk),
    "run_id": lambda w: str(_victim_eval_run(w).pk),
    "pack_id": lambda w: str(_victim_audit_pack(w).pk),
    "membership_id": lambda w: str(w.org.memberships.order_by("pk").first().pk),
    "invitation_id": lambda w: str(_victim_invitation(w).pk),
    "domain_id": lambda w: str(_victim_domain(w).pk),
    "provider_id": lambda w: f"org-{w.org.slug}",
    "pk": lambda w: str(_victim_passkey(w).pk),
    "token_id": lambda w: str(_victim_scim(w)[0].pk),
    "group_id": lambda w: str(_victim_scim(w)[1].pk),
    "uidb64": lambda w: "MQ",
    "token": lambda w: "set-password",
}

# Kwargs that name public vendor catalog objects (the same for every customer), not tenant data.
PUBLIC_KWARGS = {"snapshot_id", "name", "alias", "a", "b", "token", "uidb64"}
# The start and callback of an organisation's single sign-on are public by nature (people who are
# not signed in use them); they must still show nothing of the organisation.
PUBLIC_KWARGS |= {"provider_id"}
# allauth's passkey ids belong to a user, not an organisation; allauth asks for reauthentication first
# and then answers 404 for another user's key (tests/portal/test_second_factor.py).
PUBLIC_KWARGS |= {"pk"}

# Prefixes outside tenancy: the staff-only admin (customers are sent to its login), static files,
# and the API's self-description.
# SCIM authenticates by an organisation's SCIM token only (sessions and API keys get 401): its
# isolation, another organisation's token answering 404, is walked in tests/portal/test_scim.py.
SKIP_PREFIXES = ("admin/", "static/", "media/", "api/schema/", "api/docs/", "__debug__/", "scim/")

KWARG_RE = re.compile(r"<(?:(?P<converter>\w+):)?(?P<name>\w+)>")


def iter_routes(patterns, prefix: str = "") -> Iterator[tuple[str, object]]:
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from iter_routes(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.pattern


def all_routes() -> list[tuple[str, object]]:
    return [
        (route, pattern)
        for route, pattern in iter_routes(get_resolver().url_patterns)
        if not route.startswith(SKIP_PREFIXES)
    ]


def fill(route: str, world) -> tuple[str, set[str]]:
    names = {m.group("name") for m in KWARG_RE.finditer(route)}
    missing = names - VICTIM_VALUES.keys()
    assert not missing, (
        f"register a victim value for URL kwarg(s) {sorted(missing)} of {route!r} in {__file__}"
    )
    url = "/" + KWARG_RE.sub(lambda m: VICTIM_VALUES[m.group("name")](world), route)
    return url.replace("^", "").replace("$", ""), names


def leaks(body: bytes, world) -> list[str]:
    text = body.decode(errors="replace")
    markers = [f"/o/{world.org.slug}/", f'"organization":"{world.org.slug}"', world.key, world.org.name]
    return [marker for marker in markers if marker in text]


def test_every_route_is_a_path_the_walker_can_fill():
    for route, pattern in all_routes():
        assert isinstance(pattern, RoutePattern) or not KWARG_RE.search(route), (
            f"{route!r} uses a regex; use path() so the tenancy walker can fill it"
        )


def test_foreign_session_and_key_get_404_for_every_object_of_another_organisation(world):
    session = Client()
    session.force_login(world.outsider)
    keyed = Client(HTTP_AUTHORIZATION=f"Bearer {world.other_key}")
    # Every object the walk names is created first, so a list route (GET bug-reports/) walked before
    # the route naming its objects has the victim's rows to leak.
    filled = [(route, *fill(route, world)) for route, _pattern in all_routes()]
    checked = 0
    for route, url, names in filled:
        scoped = bool(names - PUBLIC_KWARGS)
        clients = [("session", session)] + ([("key", keyed)] if route.startswith("api/") else [])
        for who, client in clients:
            if who == "session":
                session.force_login(world.outsider)  # an earlier route may have been the logout
            statuses = {}
            for method in ("get", "post"):
                response = getattr(client, method)(
                    url, **({"content_type": "application/json"} if method == "post" else {})
                )
                statuses[method] = response.status_code
                assert response.status_code < 500, (
                    f"{method.upper()} {url} as foreign {who}: {response.status_code}"
                )
                if scoped:
                    assert response.status_code in (404, 405), (
                        f"{method.upper()} {url} as foreign {who} answered {response.status_code}, not 404"
                    )
                else:
                    assert not leaks(response.content, world), (
                        f"{method.upper()} {url} as foreign {who} shows data of {world.org.slug}: {leaks(response.content, world)}"
                    )
            if scoped:
                assert 404 in statuses.values(), f"{url} as foreign {who}: {statuses}"
            checked += 1
    assert checked >= 8


def test_own_organisation_sees_its_dashboard_and_pins(world, client, api):
    client.force_login(world.admin)
    assert client.get(f"/o/{world.org.slug}/").status_code == 200
    assert [p["alias"] for p in api.get("/api/v1/pins/", key=world.key).json()] == ["v1-chat"]


def test_customer_cannot_use_the_staff_admin(world, client):
    client.force_login(world.admin)
    response = client.get("/admin/contracts/pin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --------------------------------------------------------------------------------------------
# The attack walk
# --------------------------------------------------------------------------------------------

MALFORMED_PATH_VALUES = [
    "0", "-1", "99999999999999999999999", "1.5", "1e3", "abc", "%00", "%0d%0aX-Injected:%201", "..",
    "%2e%2e%2f%2e%2e", "a%2Fb", "%E2%80%AE", "%ff", "x" * 300, "%27%22%3Cscript%3E", "%20", "%5B%5D",
]  # fmt: skip
CONTROL = "\u0000\u0007\u001b[2J\u0085"


def attack_bodies(settings) -> dict[str, tuple[bytes, str]]:
    """name -> (body, content type)."""
    fields = ["format", "url", "alias", "observed_at", "until", "suite", "snapshot", "name", "description",
              "response_id", "receipt", "batch_id", "events", "scores", "items", "version", "from", "to"]  # fmt: skip
    with_controls = {name: f"v{CONTROL}" for name in fields}
    with_controls["events"] = [f"snapshot.deprecated{CONTROL}"]
    with_controls[f"key{CONTROL}"] = 1
    json_type = "application/json"
    return {
        "deep list": (b"[" * 50_000 + b"]" * 50_000, json_type),
        "deep object": (b'{"a":' * 20_000 + b"1" + b"}" * 20_000, json_type),
        "list": (b'["v1-chat", {"format": "pdf"}]', json_type),
        "string": (b'"pdf"', json_type),
        "number": (b"-1e309", json_type),
        "null": (b"null", json_type),
        "oversized": (b'{"name": "' + b"x" * (settings.API_MAX_BODY_BYTES + 1) + b'"}', json_type),
        "control characters": (json.dumps(with_controls).encode(), json_type),
        "not JSON": (b"{format: pdf,", json_type),
        "not UTF-8": (b'{"name": "\xff\xfe"}', json_type),
        "form-encoded": (b"format=pdf&url=https%3A%2F%2Fx", "application/x-www-form-urlencoded"),
    }


MALFORMED_QUERY = (
    "?format=%00&at=%00&since=-1&wait=%00&limit=abc&offset=-1&from=%00&to=99999-99-99&action=%1b"
    "&org=%00&job=..%2F..%2F&token=%00&state=%00&snapshot=%00&terms_version=%ff"
)


def row_counts() -> dict[str, int]:
    from django.apps import apps

    return {model._meta.label: model._default_manager.count() for model in apps.get_models()}


def assert_envelope(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code}"
    if response.status_code >= 400:
        assert response["Content-Type"].startswith("application/json"), f"{what}: {response['Content-Type']}"
        error = response.json().get("error")
        assert isinstance(error, dict) and {"code", "message", "fields"} <= set(error), f"{what}: {error}"


def test_attack_walk_every_api_route_refuses_malformed_input_in_the_envelope_and_writes_nothing(
    world, settings
):
    api_routes = [route for route, _ in all_routes() if route.startswith("api/")]
    assert len(api_routes) >= 25
    bodies = attack_bodies(settings)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.key}")
    # Every URL is built (creating the organisation's objects it names) before anything is counted.
    plans = []
    for route in api_routes:
        url, names = fill(route, world)
        malformed = []
        for name in sorted(names):
            for bad in MALFORMED_PATH_VALUES:
                values = {**{n: VICTIM_VALUES[n](world) for n in names if n != name}, name: bad}
                path = KWARG_RE.sub(lambda m, values=values: values[m.group("name")], route)
                malformed.append("/" + path)
        plans.append((route, url, malformed))
    sent = 0
    for route, url, malformed in plans:
        before = row_counts()
        for path in malformed:
            for method in ("get", "post"):
                response = getattr(client, method)(
                    path, **({"content_type": "application/json"} if method == "post" else {})
                )
                assert_envelope(response, f"{method.upper()} {path}")
                assert response.status_code >= 400, f"{method.upper()} {path}: {response.status_code}"
                sent += 1
        for name, (body, content_type) in bodies.items():
            for method in ("post", "put", "patch", "delete"):
                if method != "post" and name not in ("deep list", "list", "control characters"):
                    continue
                response = getattr(client, method)(url, data=body, content_type=content_type)
                assert_envelope(response, f"{method.upper()} {url} with {name}")
                assert response.status_code >= 400, (
                    f"{method.upper()} {url} with {name}: {response.status_code}"
                )
                sent += 1
        response = client.get(url + MALFORMED_QUERY)
        assert_envelope(response, f"GET {url}{MALFORMED_QUERY}")
        sent += 1
        after = row_counts()
        assert after == before, (
            f"{route}: rows changed {[(k, before[k], after[k]) for k in after if after[k] != before[k]]}"
        )
    assert sent > 1000
    print(f"attack walk: {len(api_routes)} API routes, {sent} requests")

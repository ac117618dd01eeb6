"""Shared fixtures: a small world with two organisations (so every test can check isolation)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from django.core.cache import cache, caches

from contracts import models, signing
from contracts.catalog import services
from tests import factories as f
from tests.contracts import stripe_standin
from tests.contracts.renewal.support import Renewal, make_renewal

# Browser tests run the live server in another thread; Django refuses sync ORM calls from an event loop.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(autouse=True)
def _test_cache(settings):
    """Tests use an in-process cache, or Redis in the CI services run (REDIS_URL set)."""
    if not os.environ.get("REDIS_URL"):
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
            "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"},
        }


@pytest.fixture(autouse=True)
def _clean_cache(_test_cache):
    from contracts.gateway import selectors as gateway_selectors
    from contracts.pins import hotpath
    from contracts.tenancy import auth

    def clear():
        cache.clear()
        caches["throttle"].clear()
        hotpath.forget()
        gateway_selectors.pin_map_forget()
        auth._last_touch.clear()

    clear()
    yield
    clear()


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Tasks run in-process unless a test starts a real worker (tests marked `redis`)."""
    from portal.celery import app

    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def _test_settings(settings):
    settings.AXES_ENABLED = False
    # In-process pin-map requests read the revision from the database: a test's writes inside its
    # transaction never commit, so no NOTIFY reaches a listener. The listeners are tested across
    # processes (tests/contracts/gateway/test_change_feed_services.py).
    settings.PIN_MAP_WAKEUP = "local"
    # A fast hasher: the default PBKDF2 costs ~0.3 s a user, and fixtures create several.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


requires_postgres = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="needs PostgreSQL: runs in the CI services run (DATABASE_URL=postgres://…)",
)


@dataclass
class World:
    org: models.Organization
    other_org: models.Organization
    admin: object
    member: object
    legal: object
    outsider: object
    family: models.ModelFamily
    old: models.Snapshot
    current: models.Snapshot
    alias: models.Alias
    pin: models.Pin
    key: str
    other_key: str


@pytest.fixture
def world(db) -> World:
    family = f.FamilyFactory(slug="chat", name="Chat")
    old = f.SnapshotFactory(family=family, name="chat-2025-01-01", released_at=f.days(-200))
    current = f.SnapshotFactory(family=family, name="chat-2025-06-01", released_at=f.days(-100))
    alias = f.make_alias(name="v1-chat", target=old, at=f.days(-199))

    services.alias_move(alias=alias, to_snapshot=current, reason="new default", at=f.days(-90))
    org = f.OrganizationFactory(slug="acme", name="Acme")
    other = f.OrganizationFactory(slug="globex", name="Globex")
    admin = f.MembershipFactory(organization=org, role=models.Role.ADMIN, user__username="acme-admin").user
    member = f.MembershipFactory(organization=org, role=models.Role.MEMBER, user__username="acme-member").user
    legal = f.MembershipFactory(organization=org, role=models.Role.LEGAL, user__username="acme-legal").user
    outsider = f.MembershipFactory(
        organization=other, role=models.Role.ADMIN, user__username="globex-admin"
    ).user
    alias.refresh_from_db()
    pin = f.make_pin(org=org, alias=alias, snapshot=old, at=f.days(-150))
    f.make_pin(org=other, alias=alias, snapshot=current, policy=models.UpgradePolicy.FOLLOW, at=f.days(-80))
    return World(
        org=org,
        other_org=other,
        admin=admin,
        member=member,
        legal=legal,
        outsider=outsider,
        family=family,
        old=old,
        current=current,
        alias=alias,
        pin=pin,
        key=f.make_key(org),
        other_key=f.make_key(other),
    )


@pytest.fixture
def api(client):
    """A test client helper for the API: `api.get(url, key=...)`."""

    class Api:
        def get(self, url, key=None, **kw):
            headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
            return client.get(url, **headers, **kw)

        def post(self, url, data=None, key=None, **kw):
            headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
            return client.post(url, data=data or {}, content_type="application/json", **headers, **kw)

    return Api()


@pytest.fixture
def signing_keys(settings, tmp_path):
    """Signing keys and generated files of this test's own (rotations and exports never touch the
    development folders); yields the keys folder."""
    settings.SIGNING_KEYS_DIR = tmp_path / "keys"
    settings.MEDIA_ROOT = tmp_path / "media"
    signing.keyring.cache_clear()
    yield settings.SIGNING_KEYS_DIR
    signing.keyring.cache_clear()


@pytest.fixture
def stripe_api(settings):
    """The real stripe SDK pointed at a local stand-in server (tests.contracts.stripe_standin)."""
    yield from stripe_standin.running(settings)


@pytest.fixture
def offer(world):
    """acme's v1-chat pin is on `old`: deprecated, retiring in 30 days, replaced by `current`, with
    extended support on sale for 150 days."""
    world.old.deprecated_at = f.days(-10)
    world.old.retires_at = f.days(30)
    world.old.replacement = world.current
    world.old.extended_support_offered = True
    world.old.extended_support_until = f.days(150)
    world.old.extended_support_price_id = "price_es_test"
    world.old.save()
    return world


@pytest.fixture
def staff(db):
    return f.UserFactory(username="vendor-staff", is_staff=True)


@pytest.fixture
def renewal(world) -> Renewal:
    """Issue 19: a procurement baseline, a consented and a forced move, two eval runners (see
    tests/contracts/renewal/support.py)."""
    return make_renewal(world)


class OidcProvider:
    """A real OpenID Connect provider (oidc-provider-mock) in its own process on 127.0.0.1."""

    def __init__(self, issuer: str):
        self.issuer = issuer

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        import httpx

        response = httpx.post(
            f"{self.issuer}/oauth2/clients",
            json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_post"},
        )
        response.raise_for_status()
        body = response.json()
        return body["client_id"], body["client_secret"]

    def set_user(self, sub: str, **claims) -> None:
        import httpx

        httpx.put(f"{self.issuer}/users/{sub}", json=claims).raise_for_status()


@pytest.fixture(scope="module")
def oidc_provider():
    import shutil
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    executable = shutil.which("oidc-provider-mock", path=str(Path(sys.executable).parent))
    # -r true: clients must register (an unknown client id is refused, as a real provider would).
    process = subprocess.Popen(
        [executable, "--host", "127.0.0.1", "--port", str(port), "-r", "true"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("oidc-provider-mock did not start") from None
            time.sleep(0.1)  # polling for the port to open, not waiting for a result
    try:
        yield OidcProvider(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=10)

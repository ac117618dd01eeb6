"""Single sign-on configuration: validation, domains, policies, the staff command; refusals write nothing."""

from __future__ import annotations

import io

import pytest
from allauth.socialaccount.models import SocialApp
from django.core.management import CommandError, call_command

from contracts.errors import ApplicationError, Conflict
from contracts.identity import selectors, services
from contracts.models import AuditAction, AuditEntry, IdentitySettings, OrgDomain, Role

pytestmark = pytest.mark.django_db

ISSUER = "https://login.acme.example"


def _configure(world, **kw):
    args = {
        "org": world.org,
        "issuer": ISSUER,
        "client_id": "portal",
        "client_secret": "s3cret",
        "domains": ["acme.example"],
        "domains_verified": True,
        "acting_user": world.admin,
    } | kw
    return services.sso_configure(**args)


def test_configure_creates_the_allauth_app_and_audits_without_the_secret(world):
    identity = _configure(world, default_role=Role.LEGAL)
    app = SocialApp.objects.get(provider_id="org-acme")
    assert (app.provider, app.client_id, app.secret) == ("openid_connect", "portal", "s3cret")
    assert app.settings == {"server_url": ISSUER, "oauth_pkce_enabled": True}
    assert identity.sso_default_role == Role.LEGAL
    assert selectors.sso_identity_for_email("Bob@ACME.example").organization == world.org
    entry = AuditEntry.objects.get(action=AuditAction.SSO_CONFIGURE, organization=world.org)
    assert "s3cret" not in str(entry.before) + str(entry.after)
    assert entry.after["client_secret_changed"] is True and entry.after["domains"] == ["acme.example"]

    _configure(world, client_id="portal-2", client_secret=None)  # keeps the stored secret
    assert SocialApp.objects.get(provider_id="org-acme").secret == "s3cret"


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"issuer": "ftp://login.acme.example"}, "issuer"),
        ({"issuer": "http://login.acme.example"}, "issuer"),
        ({"issuer": "https://login.acme.example/?x=1"}, "issuer"),
        ({"client_id": ""}, "client_id"),
        ({"client_secret": ""}, "client_secret"),
        ({"domains": ["not a domain"]}, "domain"),
        ({"default_role": "owner"}, "role"),
    ],
)
def test_bad_configuration_is_refused_and_writes_nothing(world, kw, field):
    with pytest.raises(ApplicationError) as refused:
        _configure(world, **kw)
    assert field in refused.value.fields
    assert not SocialApp.objects.exists() and not IdentitySettings.objects.exists()
    assert not OrgDomain.objects.exists() and not AuditEntry.objects.filter(action="sso.configure").exists()


def test_a_domain_of_another_organisation_is_refused(world):
    _configure(world)
    with pytest.raises(Conflict, match="another organisation"):
        services.sso_configure(
            org=world.other_org,
            issuer="https://login.globex.example",
            client_id="g",
            client_secret="g",
            domains=["acme.example"],
            acting_user=world.outsider,
        )
    assert not SocialApp.objects.filter(provider_id="org-globex").exists()


def test_an_admins_domain_waits_for_staff_verification(world):
    _configure(world, domains=[])
    domain = services.org_domain_add(org=world.org, domain="new.acme.example", acting_user=world.admin)
    assert domain.verified_at is None
    assert selectors.sso_identity_for_email("x@new.acme.example") is None
    services.org_domain_verify(domain=domain, acting_user=None)
    assert selectors.sso_identity_for_email("x@new.acme.example").organization == world.org


def test_requiring_sso_needs_a_provider_and_a_verified_domain(world):
    with pytest.raises(ApplicationError, match="Configure the identity provider"):
        services.sso_policy_set(
            org=world.org,
            require_sso=True,
            require_mfa_for_admins=False,
            default_role="member",
            acting_user=world.admin,
        )
    _configure(world, domains=[])
    with pytest.raises(ApplicationError, match="verified domain"):
        services.sso_policy_set(
            org=world.org,
            require_sso=True,
            require_mfa_for_admins=False,
            default_role="member",
            acting_user=world.admin,
        )
    assert not IdentitySettings.objects.get(organization=world.org).require_sso


def test_the_last_verified_domain_of_an_sso_only_organisation_stays(world):
    _configure(world)
    services.sso_policy_set(
        org=world.org,
        require_sso=True,
        require_mfa_for_admins=False,
        default_role="member",
        acting_user=world.admin,
    )
    with pytest.raises(Conflict, match="at least one verified domain"):
        services.org_domain_remove(
            domain=OrgDomain.objects.get(domain="acme.example"), acting_user=world.admin
        )


def test_sso_configure_command(world):
    out = io.StringIO()
    call_command(
        "sso_configure",
        "--org=acme",
        "--issuer=https://login.acme.example",
        "--client-id=portal",
        "--client-secret=s3cret",
        "--domain=acme.example",
        "--domain=acme-health.example",
        "--require-sso",
        stdout=out,
    )
    line = out.getvalue().strip()
    assert line.startswith("sso: org=acme provider=org-acme issuer=https://login.acme.example")
    assert "domains=acme-health.example, acme.example" in line and line.endswith("require-sso")
    assert OrgDomain.objects.filter(organization=world.org, verified_at__isnull=False).count() == 2
    with pytest.raises(CommandError, match="No organisation"):
        call_command("sso_configure", "--org=nope", "--issuer=x", "--client-id=x", "--client-secret=x")
    with pytest.raises(CommandError, match="https"):
        call_command("sso_configure", "--org=acme", "--issuer=ftp://x", "--client-id=x", "--client-secret=x")

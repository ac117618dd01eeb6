"""Writes of identity: invitations, members' roles and removals.

Every change is recorded in the audit log inside its own transaction, and every refusal happens
before anything is written. An organisation never loses its last admin: the admins' memberships are
locked (SELECT … FOR UPDATE) before a demotion or removal is counted.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from allauth.socialaccount.models import SocialApp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from contracts.audit.services import audit_record
from contracts.errors import ApplicationError, Conflict, NotFound
from contracts.models import (
    AuditAction,
    IdentitySettings,
    Invitation,
    Membership,
    Organization,
    OrgDomain,
    Role,
    token_hash,
)
from contracts.outbox import organization_mail_send

INVITATION_DAYS = 7


def _email_clean(email: str, field: str = "email") -> str:
    email = (email or "").strip().lower()
    if len(email) > 254:
        raise ApplicationError(
            "The address is too long (at most 254 characters).", fields={field: "at most 254"}
        )
    try:
        validate_email(email)
    except ValidationError as exc:
        raise ApplicationError(
            f"{email or 'An empty value'} is not an e-mail address.", fields={field: "not an e-mail address"}
        ) from exc
    return email


def _role_clean(role: str) -> str:
    if role not in Role.values:
        raise ApplicationError(
            f"Unknown role {role!r}.", fields={"role": f"One of: {', '.join(Role.values)}."}
        )
    return role


def invitation_link(raw_token: str) -> str:
    return settings.SITE_URL + reverse("portal:invitation", kwargs={"token": raw_token})


@transaction.atomic
def invitation_create(
    *, org: Organization, email: str, role: str, acting_user: Any, at: dt.datetime | None = None
) -> tuple[Invitation, str]:
    """Invite an address; the link (secret shown only in the e-mail) expires after INVITATION_DAYS.

    A new invitation to the same address replaces the open one (its link stops working).
    """
    at = at or timezone.now()
    email = _email_clean(email)
    role = _role_clean(role)
    if Membership.objects.filter(organization=org, user__email__iexact=email).exists():
        raise Conflict(f"{email} is already a member of {org.name}.", fields={"email": "already a member"})
    Invitation.objects.filter(
        organization=org, email=email, accepted_at__isnull=True, revoked_at__isnull=True
    ).update(revoked_at=at)
    raw = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=org,
        email=email,
        role=role,
        token_hash=token_hash(raw),
        created_at=at,
        expires_at=at + dt.timedelta(days=INVITATION_DAYS),
        invited_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    inviter = getattr(acting_user, "email", "") or "An administrator"
    organization_mail_send(
        org=org,
        kind="invitation",
        subject=f"You are invited to {org.name} on the Version Contract Portal",
        body=(
            f"{inviter} invited you to join {org.name} as {Role(role).label.lower()}.\n\n"
            f"Accept the invitation (the link works once, until {invitation.expires_at:%Y-%m-%d %H:%M} UTC):\n"
            f"{invitation_link(raw)}\n\n"
            "If you did not expect this, ignore this message.\n"
        ),
        dedupe_key=f"invitation:{invitation.pk}",
        recipients=[email],
    )
    audit_record(
        org=org,
        action=AuditAction.MEMBER_INVITE,
        target_type="invitation",
        target_id=invitation.pk,
        target_label=email,
        after={"email": email, "role": role, "expires_at": invitation.expires_at},
        acting_user=acting_user,
        at=at,
    )
    return invitation, raw


@transaction.atomic
def invitation_revoke(
    *, invitation: Invitation, acting_user: Any, at: dt.datetime | None = None
) -> Invitation:
    at = at or timezone.now()
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at or invitation.revoked_at:
        raise Conflict("This invitation is no longer open.", fields={"invitation": "not open"})
    invitation.revoked_at = at
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        org=invitation.organization,
        action=AuditAction.INVITATION_REVOKE,
        target_type="invitation",
        target_id=invitation.pk,
        target_label=invitation.email,
        before={"open": True},
        after={"open": False},
        acting_user=acting_user,
        at=at,
    )
    return invitation


def invitation_check(*, raw_token: str, at: dt.datetime | None = None) -> Invitation:
    """The open invitation of this link; refused (404, 409 used, 410 expired) otherwise."""
    at = at or timezone.now()
    invitation = (
        Invitation.objects.select_related("organization")
        .filter(token_hash=token_hash(raw_token or ""))
        .first()
    )
    if invitation is None or invitation.revoked_at is not None:
        raise NotFound("This invitation link is not valid (it may have been replaced or revoked).")
    if invitation.accepted_at is not None:
        raise Conflict("This invitation has already been used.", fields={"token": "already used"})
    if invitation.expires_at <= at:
        error = ApplicationError(
            f"This invitation expired on {invitation.expires_at:%Y-%m-%d %H:%M} UTC; ask for a new one.",
            fields={"token": "expired"},
            code="expired",
        )
        error.status_code = 410
        raise error
    return invitation


@transaction.atomic
def invitation_accept(
    *, raw_token: str, acting_user: AbstractBaseUser, at: dt.datetime | None = None
) -> Membership:
    """Join the organisation with the invited role, once. The signed-in user's address must be the invited one."""
    at = at or timezone.now()
    invitation = invitation_check(raw_token=raw_token, at=at)
    invitation = Invitation.objects.select_for_update().select_related("organization").get(pk=invitation.pk)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise Conflict("This invitation has already been used.", fields={"token": "already used"})
    if (acting_user.email or "").lower() != invitation.email:
        raise ApplicationError(
            f"This invitation is for {invitation.email}; you are signed in as {acting_user.email or 'an account without an address'}.",
            fields={"email": "different address"},
            code="forbidden",
        )
    membership, created = Membership.objects.get_or_create(
        user=acting_user,
        organization=invitation.organization,
        defaults={"role": invitation.role, "created_at": at},
    )
    invitation.accepted_at = at
    invitation.accepted_by = acting_user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        org=invitation.organization,
        action=AuditAction.INVITATION_ACCEPT,
        target_type="membership",
        target_id=membership.pk,
        target_label=invitation.email,
        after={"role": membership.role, "new_member": created},
        acting_user=acting_user,
        at=at,
    )
    return membership


@transaction.atomic
def user_create_for_invitation(*, raw_token: str, username: str, password: str) -> AbstractBaseUser:
    """A new account for the invited address (the address comes from the invitation, not the form)."""
    invitation = invitation_check(raw_token=raw_token)
    user_model = get_user_model()
    username = (username or "").strip()
    if not username or len(username) > 150:
        raise ApplicationError(
            "Choose a username of 1 to 150 characters.", fields={"username": "1 to 150 characters"}
        )
    if user_model.objects.filter(username__iexact=username).exists():
        raise Conflict(f"The username {username} is taken.", fields={"username": "taken"})
    if user_model.objects.filter(email__iexact=invitation.email).exists():
        raise Conflict(
            f"{invitation.email} already has an account: sign in to accept.",
            fields={"email": "has an account"},
        )
    user = user_model(username=username, email=invitation.email)
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ApplicationError(" ".join(exc.messages), fields={"password": " ".join(exc.messages)}) from exc
    user.set_password(password)
    user.save()
    return user


def _admins_locked(org: Organization) -> list[int]:
    return list(
        Membership.objects.select_for_update()
        .filter(organization=org, role=Role.ADMIN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _last_admin_refuse(org: Organization, membership: Membership, doing: str) -> None:
    admins = _admins_locked(org)
    if membership.role == Role.ADMIN and admins == [membership.pk]:
        raise Conflict(
            f"{org.name} must keep at least one admin: {doing} the last admin is refused. Make someone else admin first.",
            fields={"role": "last admin"},
        )


@transaction.atomic
def member_role_change(
    *, membership: Membership, role: str, acting_user: Any, at: dt.datetime | None = None
) -> Membership:
    role = _role_clean(role)
    org = membership.organization
    _admins_locked(org)
    membership = (
        Membership.objects.select_for_update().select_related("user", "organization").get(pk=membership.pk)
    )
    if membership.role == role:
        return membership
    if role != Role.ADMIN:
        _last_admin_refuse(org, membership, "demoting")
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        org=org,
        action=AuditAction.MEMBER_ROLE_CHANGE,
        target_type="membership",
        target_id=membership.pk,
        target_label=membership.user.email or membership.user.get_username(),
        before={"role": before},
        after={"role": role},
        acting_user=acting_user,
        at=at,
    )
    return membership


def user_sessions_end(*, user: AbstractBaseUser) -> int:
    """Delete every database session of `user` (signed out everywhere)."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if str(session.get_decoded().get("_auth_user_id")) == str(user.pk):
            session.delete()
            ended += 1
    return ended


@transaction.atomic
def member_remove(
    *,
    membership: Membership,
    acting_user: Any,
    action: str = AuditAction.MEMBER_REMOVE,
    end_sessions: bool = False,
    at: dt.datetime | None = None,
) -> None:
    """End a membership (the user's ledger records stay: users are never deleted here).

    The user's sessions end too when `end_sessions` (deprovisioning) or when this was their last
    organisation.
    """
    org = membership.organization
    _admins_locked(org)
    membership = Membership.objects.select_for_update().select_related("user").get(pk=membership.pk)
    _last_admin_refuse(org, membership, "removing")
    user = membership.user
    audit_record(
        org=org,
        action=action,
        target_type="membership",
        target_id=membership.pk,
        target_label=user.email or user.get_username(),
        before={"role": membership.role, "user": user.get_username()},
        after={},
        acting_user=acting_user,
        at=at,
    )
    membership.delete()
    if end_sessions or not Membership.objects.filter(user=user).exists():
        transaction.on_commit(lambda: user_sessions_end(user=user))


@transaction.atomic
def invitation_signup(*, raw_token: str, username: str, password: str) -> Membership:
    """Create the invited address's account and accept the invitation with it, or neither."""
    user = user_create_for_invitation(raw_token=raw_token, username=username, password=password)
    return invitation_accept(raw_token=raw_token, acting_user=user)


# -- single sign-on ------------------------------------------------------------------------------

DOMAIN_RE = re.compile(r"^(?=.{4,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def sso_provider_id(org: Organization) -> str:
    return f"org-{org.slug}"


def _issuer_clean(issuer: str) -> str:
    issuer = (issuer or "").strip().rstrip("/")
    if len(issuer) > 300:
        raise ApplicationError(
            "The issuer URL is too long (at most 300 characters).",
            fields={"issuer": "at most 300 characters"},
        )
    try:
        parts = urlsplit(issuer)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApplicationError(
            "The issuer must be the provider's https URL, e.g. https://login.example.com.",
            fields={"issuer": "an https URL"},
        )
    if parts.scheme != "https" and parts.hostname not in LOOPBACK_HOSTS and not settings.DEBUG:
        raise ApplicationError("The issuer must use https.", fields={"issuer": "must use https"})
    if parts.query or parts.fragment or parts.username:
        raise ApplicationError(
            "The issuer URL carries no query, fragment or credentials.", fields={"issuer": "plain URL only"}
        )
    return issuer


def domain_clean(domain: str) -> str:
    domain = (domain or "").strip().lower().lstrip("@").rstrip(".")
    if not DOMAIN_RE.match(domain):
        raise ApplicationError(
            f"{domain or 'An empty value'} is not an e-mail domain such as example.com.",
            fields={"domain": "a domain such as example.com"},
        )
    return domain


def _identity_locked(org: Organization) -> IdentitySettings:
    IdentitySettings.objects.get_or_create(organization=org)
    return IdentitySettings.objects.select_for_update().get(organization=org)


def _domains_add(org: Organization, domains: list[str], *, verified: bool, at: dt.datetime) -> list[str]:
    added = []
    for domain in domains:
        owner = OrgDomain.objects.filter(domain=domain).exclude(organization=org).exists()
        if owner:
            raise Conflict(
                f"{domain} belongs to another organisation.", fields={"domain": "claimed elsewhere"}
            )
        row, created = OrgDomain.objects.get_or_create(
            domain=domain,
            defaults={"organization": org, "created_at": at, "verified_at": at if verified else None},
        )
        if verified and row.verified_at is None:
            row.verified_at = at
            row.save(update_fields=["verified_at"])
        if created:
            added.append(domain)
    return added


@transaction.atomic
def sso_configure(
    *,
    org: Organization,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    domains: list[str] | None = None,
    default_role: str | None = None,
    domains_verified: bool = False,
    acting_user: Any = None,
    at: dt.datetime | None = None,
) -> IdentitySettings:
    """Point the organisation at its OpenID Connect provider (an allauth SocialApp `org-<slug>`).

    `client_secret` None keeps the stored one. `domains` are added; staff (the management command)
    pass `domains_verified`, an organisation admin's domains wait for staff verification.
    """
    at = at or timezone.now()
    issuer = _issuer_clean(issuer)
    client_id = (client_id or "").strip()
    if not client_id or len(client_id) > 191:
        raise ApplicationError(
            "A client id of 1 to 191 characters is needed.", fields={"client_id": "1 to 191 characters"}
        )
    if client_secret is not None and len(client_secret) > 191:
        raise ApplicationError(
            "The client secret is too long (at most 191 characters).",
            fields={"client_secret": "at most 191 characters"},
        )
    role = _role_clean(default_role) if default_role else None
    cleaned = sorted({domain_clean(d) for d in (domains or [])})
    identity = _identity_locked(org)
    provider_id = sso_provider_id(org)
    app = SocialApp.objects.filter(provider="openid_connect", provider_id=provider_id).first()
    if app is None and not client_secret:
        raise ApplicationError(
            "A client secret is needed the first time.", fields={"client_secret": "required"}
        )
    before = {
        "issuer": identity.sso_issuer,
        "client_id": identity.sso_client_id,
        "default_role": identity.sso_default_role,
        "domains": sorted(org.domains.values_list("domain", flat=True)),
    }
    app = app or SocialApp(provider="openid_connect", provider_id=provider_id)
    app.name = "Single sign-on"  # shown on public pages: no organisation name
    app.client_id = client_id
    if client_secret:
        app.secret = client_secret
    app.settings = {"server_url": issuer, "oauth_pkce_enabled": True}
    app.save()
    identity.sso_issuer = issuer
    identity.sso_client_id = client_id
    identity.sso_provider_id = provider_id
    if role:
        identity.sso_default_role = role
    identity.updated_at = at
    identity.save()
    _domains_add(org, cleaned, verified=domains_verified, at=at)
    audit_record(
        org=org,
        action=AuditAction.SSO_CONFIGURE,
        target_type="sso",
        target_id=provider_id,
        target_label=issuer,
        before=before,
        after={
            "issuer": issuer,
            "client_id": client_id,
            "client_secret_changed": bool(client_secret),
            "default_role": identity.sso_default_role,
            "domains": sorted(org.domains.values_list("domain", flat=True)),
        },
        acting_user=acting_user,
        at=at,
    )
    return identity


@transaction.atomic
def sso_policy_set(
    *,
    org: Organization,
    require_sso: bool,
    require_mfa_for_admins: bool,
    default_role: str,
    acting_user: Any,
    at: dt.datetime | None = None,
) -> IdentitySettings:
    at = at or timezone.now()
    role = _role_clean(default_role)
    identity = _identity_locked(org)
    if require_sso and not identity.sso_configured:
        raise ApplicationError(
            "Configure the identity provider before requiring single sign-on.",
            fields={"require_sso": "no provider"},
        )
    if require_sso and not org.domains.filter(verified_at__isnull=False).exists():
        raise ApplicationError(
            "Requiring single sign-on needs at least one verified domain.",
            fields={"require_sso": "no verified domain"},
        )
    fields = ("require_sso", "require_mfa_for_admins", "sso_default_role")
    before = {name: getattr(identity, name) for name in fields}
    identity.require_sso, identity.require_mfa_for_admins, identity.sso_default_role = (
        require_sso,
        require_mfa_for_admins,
        role,
    )
    after = {name: getattr(identity, name) for name in fields}
    if before == after:
        return identity
    identity.updated_at = at
    identity.save(update_fields=[*fields, "updated_at"])
    audit_record(
        org=org,
        action=AuditAction.SSO_POLICY,
        target_type="sso",
        target_id=identity.sso_provider_id or "",
        target_label="sign-in policy",
        before=before,
        after=after,
        acting_user=acting_user,
        at=at,
    )
    return identity


@transaction.atomic
def org_domain_add(
    *, org: Organization, domain: str, acting_user: Any, at: dt.datetime | None = None
) -> OrgDomain:
    """An admin claims a domain; it routes sign-ins only once vendor staff verify it."""
    at = at or timezone.now()
    domain = domain_clean(domain)
    if OrgDomain.objects.filter(organization=org, domain=domain).exists():
        raise Conflict(f"{domain} is already listed.", fields={"domain": "already listed"})
    _domains_add(org, [domain], verified=False, at=at)
    audit_record(
        org=org,
        action=AuditAction.SSO_CONFIGURE,
        target_type="sso-domain",
        target_id=domain,
        target_label=domain,
        after={"domain": domain, "verified": False},
        acting_user=acting_user,
        at=at,
    )
    return OrgDomain.objects.get(domain=domain)


@transaction.atomic
def org_domain_verify(*, domain: OrgDomain, acting_user: Any, at: dt.datetime | None = None) -> OrgDomain:
    """Vendor staff confirm the organisation owns the domain (e.g. after a DNS TXT check)."""
    at = at or timezone.now()
    domain = OrgDomain.objects.select_for_update().get(pk=domain.pk)
    if domain.verified_at is None:
        domain.verified_at = at
        domain.save(update_fields=["verified_at"])
        audit_record(
            org=domain.organization,
            action=AuditAction.SSO_CONFIGURE,
            target_type="sso-domain",
            target_id=domain.domain,
            target_label=domain.domain,
            before={"verified": False},
            after={"verified": True},
            acting_user=acting_user,
            at=at,
        )
    return domain


@transaction.atomic
def org_domain_remove(*, domain: OrgDomain, acting_user: Any, at: dt.datetime | None = None) -> None:
    org = domain.organization
    identity = _identity_locked(org)
    remaining = org.domains.filter(verified_at__isnull=False).exclude(pk=domain.pk).exists()
    if identity.require_sso and domain.verified_at and not remaining:
        raise Conflict(
            "Single sign-on is required: keep at least one verified domain, or stop requiring it first.",
            fields={"domain": "last verified domain"},
        )
    audit_record(
        org=org,
        action=AuditAction.SSO_CONFIGURE,
        target_type="sso-domain",
        target_id=domain.domain,
        target_label=domain.domain,
        before={"domain": domain.domain, "verified": bool(domain.verified_at)},
        acting_user=acting_user,
        at=at,
    )
    domain.delete()


@transaction.atomic
def sso_member_join(
    *, org: Organization, user: AbstractBaseUser, at: dt.datetime | None = None
) -> Membership:
    """A person the organisation's provider signed in becomes a member (default role) if not one yet."""
    at = at or timezone.now()
    identity = IdentitySettings.objects.filter(organization=org).first()
    role = identity.sso_default_role if identity else Role.MEMBER
    membership, created = Membership.objects.get_or_create(
        user=user, organization=org, defaults={"role": role, "created_at": at}
    )
    if created:
        audit_record(
            org=org,
            action=AuditAction.MEMBER_JOIN_SSO,
            target_type="membership",
            target_id=membership.pk,
            target_label=user.email or user.get_username(),
            after={"role": role},
            acting_user=user,
            at=at,
        )
    return membership

"""SCIM provisioning: tokens, provisioned people and groups (the writes behind /scim/v2/).

Groups map to roles: a person's role is the highest role among their groups that carry one
(admin > legal > member); without such a group they keep the role they have (on first
provisioning: the organisation's default SSO role). An organisation never loses its last admin
through provisioning either: the change is refused (409) and nothing is written.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from contracts.audit.services import audit_record
from contracts.errors import ApplicationError, Conflict
from contracts.identity import selectors
from contracts.identity.services import member_remove
from contracts.models import (
    AuditAction,
    IdentitySettings,
    Membership,
    Organization,
    Role,
    ScimGroup,
    ScimToken,
    ScimUser,
    token_hash,
)

TOKEN_PREFIX = "scim_"
ROLE_RANK = {Role.MEMBER: 1, Role.LEGAL: 2, Role.ADMIN: 3}


@transaction.atomic
def scim_token_create(
    *,
    org: Organization,
    name: str = "Identity provider",
    acting_user: Any = None,
    raw_token: str | None = None,
) -> tuple[ScimToken, str]:
    """A new token; its secret is returned now and never again."""
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ApplicationError(
            "A token needs a name of 1 to 100 characters.", fields={"name": "1 to 100 characters"}
        )
    raw = raw_token or TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ScimToken.objects.create(
        organization=org,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 8],
        token_hash=token_hash(raw),
        created_at=timezone.now(),
        created_by=acting_user if getattr(acting_user, "pk", None) else None,
    )
    audit_record(
        org=org,
        action=AuditAction.SCIM_TOKEN_CREATE,
        target_type="scim-token",
        target_id=token.pk,
        target_label=f"{token.name} ({token.prefix}…)",
        after={"name": token.name, "prefix": token.prefix},
        acting_user=acting_user,
    )
    return token, raw


@transaction.atomic
def scim_token_revoke(*, token: ScimToken, acting_user: Any = None) -> ScimToken:
    token = ScimToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(
            org=token.organization,
            action=AuditAction.SCIM_TOKEN_REVOKE,
            target_type="scim-token",
            target_id=token.pk,
            target_label=f"{token.name} ({token.prefix}…)",
            before={"revoked_at": None},
            after={"revoked_at": token.revoked_at},
            acting_user=acting_user,
        )
    return token


def scim_token_touch(*, token: ScimToken, at: dt.datetime | None = None) -> None:
    at = at or timezone.now()
    if token.last_used_at is None or at - token.last_used_at > dt.timedelta(minutes=1):
        ScimToken.objects.filter(pk=token.pk).update(last_used_at=at)


def _default_role(org: Organization) -> str:
    identity = IdentitySettings.objects.filter(organization=org).first()
    return identity.sso_default_role if identity else Role.MEMBER


def _group_role(scim_user: ScimUser) -> str | None:
    roles = [g.role for g in scim_user.groups.all() if g.role]
    return max(roles, key=ROLE_RANK.__getitem__) if roles else None


def _label(scim_user: ScimUser) -> str:
    return scim_user.user.email or scim_user.user.get_username()


def _membership_sync(scim_user: ScimUser, *, acting_user: Any, at: dt.datetime) -> None:
    """Make the membership follow `active` and the groups' role."""
    org = scim_user.organization
    membership = Membership.objects.select_for_update().filter(organization=org, user=scim_user.user).first()
    if not scim_user.active:
        if membership is not None:
            member_remove(
                membership=membership,
                acting_user=acting_user,
                action=AuditAction.SCIM_USER_DEPROVISION,
                end_sessions=True,
                at=at,
            )
        return
    role = _group_role(scim_user)
    if membership is None:
        Membership.objects.create(
            user=scim_user.user, organization=org, role=role or _default_role(org), created_at=at
        )
    elif role and membership.role != role:
        if membership.role == Role.ADMIN:
            admins = Membership.objects.select_for_update().filter(organization=org, role=Role.ADMIN).count()
            if admins == 1:
                raise Conflict(
                    f"{org.name} must keep at least one admin: {_label(scim_user)} keeps the admin role.",
                    fields={"groups": "last admin"},
                )
        before = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        audit_record(
            org=org,
            action=AuditAction.MEMBER_ROLE_CHANGE,
            target_type="membership",
            target_id=membership.pk,
            target_label=_label(scim_user),
            before={"role": before},
            after={"role": role, "via": "scim-group"},
            acting_user=acting_user,
            at=at,
        )


def _user_for(org: Organization, *, user_name: str, email: str, scim_user: ScimUser | None):
    user_model = get_user_model()
    if scim_user is not None:
        user = scim_user.user
        clash = user_model.objects.filter(username__iexact=user_name).exclude(pk=user.pk).exists()
        if clash:
            raise Conflict(f"The userName {user_name} is taken.", fields={"userName": "uniqueness"})
        return user
    user = user_model.objects.filter(username__iexact=user_name).first()
    if user is None:
        user = user_model(username=user_name)
        user.set_unusable_password()
        return user
    # An existing account is adopted only when its address is at one of this organisation's verified
    # domains: otherwise one organisation's provider could rename or deprovision another's people.
    domain = selectors.email_domain(user.email)
    if (
        not domain
        or domain != selectors.email_domain(email)
        or domain not in selectors.verified_domains(org=org)
    ):
        raise Conflict(f"The userName {user_name} is taken.", fields={"userName": "uniqueness"})
    if ScimUser.objects.filter(organization=org, user=user).exists():
        raise Conflict(f"{user_name} is already provisioned.", fields={"userName": "uniqueness"})
    return user


@transaction.atomic
def scim_user_save(
    *,
    org: Organization,
    scim_user: ScimUser | None,
    user_name: str,
    email: str = "",
    given_name: str = "",
    family_name: str = "",
    external_id: str = "",
    active: bool = True,
    acting_user: Any = None,
    at: dt.datetime | None = None,
) -> ScimUser:
    """Create (scim_user None) or replace a provisioned person; membership follows `active`."""
    at = at or timezone.now()
    user_name = (user_name or "").strip()
    if not user_name or len(user_name) > 150:
        raise ApplicationError(
            "userName of 1 to 150 characters is required.", fields={"userName": "invalidValue"}
        )
    email = (email or "").strip().lower()
    if (
        len(email) > 254
        or len(given_name or "") > 150
        or len(family_name or "") > 150
        or len(external_id or "") > 254
    ):
        raise ApplicationError("A value is too long.", fields={"name": "invalidValue"})
    if scim_user is not None:
        scim_user = ScimUser.objects.select_for_update().select_related("user").get(pk=scim_user.pk)
    user = _user_for(org, user_name=user_name, email=email, scim_user=scim_user)
    before = (
        {
            "userName": user.get_username(),
            "email": user.email,
            "active": scim_user.active,
            "externalId": scim_user.external_id,
        }
        if scim_user
        else {}
    )
    user.username = user_name
    user.email = email
    user.first_name = (given_name or "")[:150]
    user.last_name = (family_name or "")[:150]
    user.save()
    if scim_user is None:
        scim_user = ScimUser.objects.create(
            organization=org,
            user=user,
            external_id=external_id or "",
            active=active,
            created_at=at,
            updated_at=at,
        )
        action = AuditAction.SCIM_USER_PROVISION
    else:
        scim_user.external_id = external_id or ""
        scim_user.active = active
        scim_user.updated_at = at
        scim_user.save(update_fields=["external_id", "active", "updated_at"])
        action = AuditAction.SCIM_USER_UPDATE
    after = {"userName": user_name, "email": email, "active": active, "externalId": scim_user.external_id}
    if before != after:
        audit_record(
            org=org,
            action=action,
            target_type="scim-user",
            target_id=scim_user.scim_id,
            target_label=email or user_name,
            before=before,
            after=after,
            acting_user=acting_user,
            at=at,
        )
    _membership_sync(scim_user, acting_user=acting_user, at=at)
    return scim_user


@transaction.atomic
def scim_user_delete(*, scim_user: ScimUser, acting_user: Any = None, at: dt.datetime | None = None) -> None:
    """Deprovision and forget the SCIM resource; the account and its ledger records stay."""
    at = at or timezone.now()
    scim_user = (
        ScimUser.objects.select_for_update().select_related("user", "organization").get(pk=scim_user.pk)
    )
    scim_user.active = False
    _membership_sync(scim_user, acting_user=acting_user, at=at)
    audit_record(
        org=scim_user.organization,
        action=AuditAction.SCIM_USER_DEPROVISION,
        target_type="scim-user",
        target_id=scim_user.scim_id,
        target_label=_label(scim_user),
        before={"provisioned": True},
        after={"provisioned": False},
        acting_user=acting_user,
        at=at,
    )
    scim_user.delete()


def _role_for_name(display_name: str) -> str:
    """A new group named after a role ("Admins", "legal") grants it; the admin may change that."""
    name = display_name.strip().lower().removesuffix("s")
    return name if name in Role.values else ""


@transaction.atomic
def scim_group_save(
    *,
    org: Organization,
    group: ScimGroup | None,
    display_name: str,
    member_ids: list[str],
    external_id: str = "",
    acting_user: Any = None,
    at: dt.datetime | None = None,
) -> ScimGroup:
    at = at or timezone.now()
    display_name = (display_name or "").strip()
    if not display_name or len(display_name) > 200:
        raise ApplicationError(
            "displayName of 1 to 200 characters is required.", fields={"displayName": "invalidValue"}
        )
    if (
        ScimGroup.objects.filter(organization=org, display_name__iexact=display_name)
        .exclude(pk=getattr(group, "pk", None))
        .exists()
    ):
        raise Conflict(f"A group named {display_name} exists.", fields={"displayName": "uniqueness"})
    wanted = set(map(str, member_ids))
    members = [
        u
        for u in ScimUser.objects.filter(organization=org).select_related("user")
        if str(u.scim_id) in wanted
    ]
    if len(members) != len(wanted):
        raise ApplicationError(
            "A member is not a user of this organisation.", fields={"members": "invalidValue"}
        )
    if group is None:
        group = ScimGroup.objects.create(
            organization=org,
            display_name=display_name,
            external_id=external_id or "",
            role=_role_for_name(display_name),
            created_at=at,
            updated_at=at,
        )
        before_members: set[ScimUser] = set()
        before = {}
    else:
        group = ScimGroup.objects.select_for_update().get(pk=group.pk)
        before_members = set(group.members.select_related("user"))
        before = {"displayName": group.display_name, "members": sorted(_label(u) for u in before_members)}
        group.display_name = display_name
        group.external_id = external_id or ""
        group.updated_at = at
        group.save(update_fields=["display_name", "external_id", "updated_at"])
    group.members.set(members)
    after = {"displayName": display_name, "members": sorted(_label(u) for u in members), "role": group.role}
    audit_record(
        org=org,
        action=AuditAction.SCIM_GROUP_CHANGE,
        target_type="scim-group",
        target_id=group.scim_id,
        target_label=display_name,
        before=before,
        after=after,
        acting_user=acting_user,
        at=at,
    )
    for scim_user in before_members | set(members):
        _membership_sync(scim_user, acting_user=acting_user, at=at)
    return group


@transaction.atomic
def scim_group_delete(*, group: ScimGroup, acting_user: Any = None, at: dt.datetime | None = None) -> None:
    at = at or timezone.now()
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    members = list(group.members.select_related("user"))
    audit_record(
        org=group.organization,
        action=AuditAction.SCIM_GROUP_CHANGE,
        target_type="scim-group",
        target_id=group.scim_id,
        target_label=group.display_name,
        before={"displayName": group.display_name, "members": sorted(_label(u) for u in members)},
        after={},
        acting_user=acting_user,
        at=at,
    )
    group.delete()


@transaction.atomic
def scim_group_role_set(
    *, group: ScimGroup, role: str, acting_user: Any, at: dt.datetime | None = None
) -> ScimGroup:
    """The organisation admin decides which role a pushed group grants (empty: none)."""
    at = at or timezone.now()
    if role and role not in Role.values:
        raise ApplicationError(
            f"Unknown role {role!r}.", fields={"role": f"One of: {', '.join(Role.values)}."}
        )
    group = ScimGroup.objects.select_for_update().get(pk=group.pk)
    if group.role == role:
        return group
    before = group.role
    group.role = role
    group.save(update_fields=["role"])
    audit_record(
        org=group.organization,
        action=AuditAction.SCIM_GROUP_CHANGE,
        target_type="scim-group",
        target_id=group.scim_id,
        target_label=group.display_name,
        before={"role": before},
        after={"role": role},
        acting_user=acting_user,
        at=at,
    )
    for scim_user in group.members.select_related("user", "organization"):
        _membership_sync(scim_user, acting_user=acting_user, at=at)
    return group

"""Writes of identity: invitations, members' roles and removals.

Every change is recorded in the audit log inside its own transaction, and every refusal happens
before anything is written. An organisation never loses its last admin: the admins' memberships are
locked (SELECT … FOR UPDATE) before a demotion or removal is counted.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

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
from contracts.models import AuditAction, Invitation, Membership, Organization, Role, token_hash
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

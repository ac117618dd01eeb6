"""Reads of identity, scoped to one organisation (another organisation's object is 404)."""

from __future__ import annotations

from django.db.models import QuerySet

from contracts.errors import NotFound
from contracts.models import (
    IdentitySettings,
    Invitation,
    Membership,
    Organization,
    OrgDomain,
    Role,
    ScimGroup,
    ScimToken,
    token_hash,
)


def member_list(*, org: Organization) -> QuerySet[Membership]:
    return Membership.objects.filter(organization=org).select_related("user").order_by("user__email", "pk")


def member_get(*, org: Organization, membership_id: int) -> Membership:
    membership = (
        Membership.objects.select_related("user", "organization")
        .filter(organization=org, pk=membership_id)
        .first()
    )
    if membership is None:
        raise NotFound("No such member in this organisation.")
    return membership


def invitation_list_open(*, org: Organization) -> QuerySet[Invitation]:
    return (
        Invitation.objects.filter(organization=org, accepted_at__isnull=True, revoked_at__isnull=True)
        .select_related("invited_by")
        .order_by("-created_at")
    )


def invitation_get(*, org: Organization, invitation_id: int) -> Invitation:
    invitation = (
        Invitation.objects.select_related("organization").filter(organization=org, pk=invitation_id).first()
    )
    if invitation is None:
        raise NotFound("No such invitation in this organisation.")
    return invitation


def identity_get(*, org: Organization) -> IdentitySettings:
    """The organisation's identity settings (defaults, unsaved, when never configured)."""
    return IdentitySettings.objects.filter(organization=org).first() or IdentitySettings(organization=org)


def domain_list(*, org: Organization) -> QuerySet[OrgDomain]:
    return OrgDomain.objects.filter(organization=org).order_by("domain")


def domain_get(*, org: Organization, domain_id: int) -> OrgDomain:
    domain = OrgDomain.objects.select_related("organization").filter(organization=org, pk=domain_id).first()
    if domain is None:
        raise NotFound("No such domain in this organisation.")
    return domain


def email_domain(email: str) -> str:
    return (email or "").rpartition("@")[2].strip().lower() if "@" in (email or "") else ""


def sso_identity_for_email(email: str) -> IdentitySettings | None:
    """The SSO settings that govern an address: its domain is verified for an organisation with a provider."""
    domain = email_domain(email)
    if not domain:
        return None
    return (
        IdentitySettings.objects.select_related("organization")
        .filter(
            organization__domains__domain=domain,
            organization__domains__verified_at__isnull=False,
            sso_provider_id__isnull=False,
        )
        .exclude(sso_issuer="")
        .first()
    )


def sso_identity_for_provider(provider_id: str) -> IdentitySettings | None:
    return IdentitySettings.objects.select_related("organization").filter(sso_provider_id=provider_id).first()


def verified_domains(*, org: Organization) -> set[str]:
    return set(
        OrgDomain.objects.filter(organization=org, verified_at__isnull=False).values_list("domain", flat=True)
    )


def sso_required_for(*, user) -> bool:
    """A non-staff member of an organisation that requires single sign-on."""
    if user.is_staff:
        return False
    return IdentitySettings.objects.filter(organization__memberships__user=user, require_sso=True).exists()


def mfa_required_for(*, user) -> bool:
    """An admin of an organisation that requires a second factor of its admins."""
    return IdentitySettings.objects.filter(
        organization__memberships__user=user,
        organization__memberships__role=Role.ADMIN,
        require_mfa_for_admins=True,
    ).exists()


def sign_in_policy_for(*, user) -> tuple[bool, bool]:
    """(SSO required, second factor required) for a user, from their memberships: one query."""
    rows = Membership.objects.filter(user=user, organization__identity__isnull=False).values_list(
        "role", "organization__identity__require_sso", "organization__identity__require_mfa_for_admins"
    )
    sso = mfa = False
    for role, require_sso, require_mfa in rows:
        sso = sso or (require_sso and not user.is_staff)
        mfa = mfa or (require_mfa and role == Role.ADMIN)
    return sso, mfa


def scim_token_for_raw(raw: str) -> ScimToken | None:
    return (
        ScimToken.objects.select_related("organization")
        .filter(token_hash=token_hash(raw), revoked_at__isnull=True)
        .first()
    )


def scim_token_list(*, org: Organization) -> QuerySet[ScimToken]:
    return (
        ScimToken.objects.filter(organization=org)
        .select_related("created_by")
        .order_by("revoked_at", "-created_at")
    )


def scim_token_get(*, org: Organization, token_id: int) -> ScimToken:
    token = ScimToken.objects.select_related("organization").filter(organization=org, pk=token_id).first()
    if token is None:
        raise NotFound("No such SCIM token in this organisation.")
    return token


def scim_group_list(*, org: Organization) -> QuerySet[ScimGroup]:
    return ScimGroup.objects.filter(organization=org).order_by("display_name")


def scim_group_get(*, org: Organization, group_id: int) -> ScimGroup:
    group = ScimGroup.objects.select_related("organization").filter(organization=org, pk=group_id).first()
    if group is None:
        raise NotFound("No such group in this organisation.")
    return group

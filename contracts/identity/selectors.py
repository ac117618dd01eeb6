"""Reads of identity, scoped to one organisation (another organisation's object is 404)."""

from __future__ import annotations

from django.db.models import QuerySet

from contracts.errors import NotFound
from contracts.models import Invitation, Membership, Organization


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

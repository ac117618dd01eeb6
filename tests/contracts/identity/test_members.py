"""Members and invitations: invitations through the outbox, single use and expiring; roles; removals;
an organisation never loses its last admin; every refusal writes nothing."""

from __future__ import annotations

import re

import pytest
import time_machine
from django.contrib.auth import get_user_model

from contracts.errors import ApplicationError, Conflict, NotFound
from contracts.identity import services
from contracts.models import AuditAction, AuditEntry, Invitation, Membership, Role
from notifications.models import Notice
from tests import factories as f

pytestmark = pytest.mark.django_db


def _link_token(body: str) -> str:
    return re.search(r"/invitations/([^/\s]+)/", body).group(1)


def test_invitation_goes_through_the_outbox_and_joins_once(
    world, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, raw = services.invitation_create(
            org=world.org, email="New.Person@Acme.example", role=Role.LEGAL, acting_user=world.admin
        )
    assert invitation.email == "new.person@acme.example" and invitation.token_hash != raw
    notice = Notice.objects.get(organization=world.org, kind="invitation")
    assert notice.recipients == ["new.person@acme.example"]
    (message,) = mailoutbox
    assert message.to == ["new.person@acme.example"] and _link_token(message.body) == raw

    user = f.UserFactory(username="newbie", email="new.person@acme.example")
    membership = services.invitation_accept(raw_token=raw, acting_user=user)
    assert (membership.organization, membership.role) == (world.org, Role.LEGAL)
    with pytest.raises(Conflict, match="already been used"):
        services.invitation_accept(raw_token=raw, acting_user=user)
    actions = set(AuditEntry.objects.filter(organization=world.org).values_list("action", flat=True))
    assert {AuditAction.MEMBER_INVITE, AuditAction.INVITATION_ACCEPT} <= actions


def test_expired_invitation_is_refused_and_writes_nothing(world):
    _invitation, raw = services.invitation_create(
        org=world.org, email="late@acme.example", role=Role.MEMBER, acting_user=world.admin
    )
    user = f.UserFactory(username="late", email="late@acme.example")
    with time_machine.travel(f.days(8)), pytest.raises(ApplicationError, match="expired") as refused:
        services.invitation_accept(raw_token=raw, acting_user=user)
    assert refused.value.status_code == 410
    assert not Membership.objects.filter(user=user).exists()


def test_invitation_for_another_address_is_refused(world):
    _invitation, raw = services.invitation_create(
        org=world.org, email="someone@acme.example", role=Role.ADMIN, acting_user=world.admin
    )
    with pytest.raises(ApplicationError, match=r"for someone@acme\.example"):
        services.invitation_accept(raw_token=raw, acting_user=world.outsider)
    assert not Membership.objects.filter(user=world.outsider, organization=world.org).exists()
    assert Invitation.objects.get(email="someone@acme.example").accepted_at is None


def test_a_new_invitation_replaces_the_open_one_and_revoked_links_stop_working(world):
    _first, first_raw = services.invitation_create(
        org=world.org, email="twice@acme.example", role=Role.MEMBER, acting_user=world.admin
    )
    second, second_raw = services.invitation_create(
        org=world.org, email="twice@acme.example", role=Role.ADMIN, acting_user=world.admin
    )
    with pytest.raises(NotFound):
        services.invitation_check(raw_token=first_raw)
    services.invitation_revoke(invitation=second, acting_user=world.admin)
    with pytest.raises(NotFound):
        services.invitation_check(raw_token=second_raw)


@pytest.mark.parametrize(
    ("email", "role", "field"),
    [
        ("not-an-address", Role.MEMBER, "email"),
        ("x@acme.example", "owner", "role"),
        ("acme-admin@example.com", "member", "email"),
    ],
)
def test_bad_invitations_are_refused_and_write_nothing(world, email, role, field):
    before = (Invitation.objects.count(), AuditEntry.objects.count(), Notice.objects.count())
    with pytest.raises(ApplicationError) as refused:
        services.invitation_create(org=world.org, email=email, role=role, acting_user=world.admin)
    assert field in refused.value.fields
    assert (Invitation.objects.count(), AuditEntry.objects.count(), Notice.objects.count()) == before


def test_signup_through_an_invitation_creates_the_account_with_the_invited_address(world):
    _invitation, raw = services.invitation_create(
        org=world.org, email="fresh@acme.example", role=Role.MEMBER, acting_user=world.admin
    )
    with pytest.raises(ApplicationError, match="password"):
        services.invitation_signup(raw_token=raw, username="fresh", password="123")
    assert not get_user_model().objects.filter(username="fresh").exists()
    membership = services.invitation_signup(raw_token=raw, username="fresh", password="a-long-pass-phrase-42")
    assert membership.user.email == "fresh@acme.example" and membership.user.check_password(
        "a-long-pass-phrase-42"
    )


def _admin_membership(world):
    return Membership.objects.get(user=world.admin, organization=world.org)


def test_the_last_admin_cannot_be_demoted_or_removed(world):
    admin = _admin_membership(world)
    before = AuditEntry.objects.count()
    with pytest.raises(Conflict, match="last admin"):
        services.member_role_change(membership=admin, role=Role.MEMBER, acting_user=world.admin)
    with pytest.raises(Conflict, match="last admin"):
        services.member_remove(membership=admin, acting_user=world.admin)
    admin.refresh_from_db()
    assert admin.role == Role.ADMIN and AuditEntry.objects.count() == before


def test_role_change_and_removal_are_recorded_and_keep_the_ledger(world, client):
    legal = Membership.objects.get(user=world.legal, organization=world.org)
    services.member_role_change(membership=legal, role=Role.ADMIN, acting_user=world.admin)
    # Two admins now: the first may step down.
    services.member_role_change(
        membership=_admin_membership(world), role=Role.MEMBER, acting_user=world.admin
    )
    change = AuditEntry.objects.filter(action=AuditAction.MEMBER_ROLE_CHANGE).order_by("id").first()
    assert (change.before, change.after) == ({"role": "legal"}, {"role": "admin"})

    client.force_login(world.member)
    member = Membership.objects.get(user=world.member, organization=world.org)
    services.member_remove(membership=member, acting_user=world.legal)
    assert not Membership.objects.filter(pk=member.pk).exists()
    assert get_user_model().objects.filter(pk=world.member.pk).exists()
    assert client.get(f"/o/{world.org.slug}/").status_code == 404

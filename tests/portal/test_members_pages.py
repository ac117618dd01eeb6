"""The members page and the invitation link, as a person uses them."""

from __future__ import annotations

import re

import pytest

from contracts.models import Invitation, Membership, Role

pytestmark = pytest.mark.django_db


def test_admin_invites_and_the_invitee_signs_up_through_the_link(
    client, world, mailoutbox, django_capture_on_commit_callbacks
):
    client.force_login(world.admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/o/{world.org.slug}/settings/members/invite/", {"email": "new@acme.example", "role": "legal"}
        )
    assert response.status_code == 302
    page = client.get(f"/o/{world.org.slug}/settings/members/")
    assert b"new@acme.example" in page.content and b"Pending invitations" in page.content
    link = re.search(r"http://\S+/invitations/\S+/", mailoutbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]

    client.logout()
    invitation_page = client.get(f"/{path}")
    assert invitation_page.status_code == 200 and b"Create your account" in invitation_page.content
    assert invitation_page["Cache-Control"] == "no-store"
    response = client.post(f"/{path}signup/", {"username": "newlegal", "password": "a-long-pass-phrase-42"})
    assert response.status_code == 302 and response["Location"] == f"/o/{world.org.slug}/"
    assert Membership.objects.get(user__username="newlegal").role == Role.LEGAL

    client.logout()
    reused = client.post(f"/{path}signup/", {"username": "again", "password": "a-long-pass-phrase-42"})
    assert reused.status_code == 409 and b"already been used" in reused.content


def test_invite_form_errors_keep_what_was_typed(client, world):
    client.force_login(world.admin)
    response = client.post(
        f"/o/{world.org.slug}/settings/members/invite/", {"email": "nope", "role": "admin"}
    )
    assert response.status_code == 400
    assert b'value="nope"' in response.content and b"not an e-mail address" in response.content
    assert not Invitation.objects.exists()


def test_removing_the_last_admin_on_the_page_is_refused(client, world):
    client.force_login(world.admin)
    admin = Membership.objects.get(user=world.admin, organization=world.org)
    response = client.post(f"/o/{world.org.slug}/settings/members/{admin.pk}/remove/")
    assert response.status_code == 409 and b"last admin" in response.content
    response = client.post(f"/o/{world.org.slug}/settings/members/{admin.pk}/role/", {"role": "member"})
    assert response.status_code == 409
    assert Membership.objects.get(pk=admin.pk).role == Role.ADMIN


def test_members_page_is_for_admins(client, world):
    client.force_login(world.legal)
    assert client.get(f"/o/{world.org.slug}/settings/members/").status_code == 403
    member = Membership.objects.get(user=world.member, organization=world.org)
    assert client.post(f"/o/{world.org.slug}/settings/members/{member.pk}/remove/").status_code == 403
    assert Membership.objects.filter(pk=member.pk).exists()

"""Organisation context for the pages: who may see which organisation, in which role.

Every customer-scoped page goes through `org_view`: the organisation comes from the URL, the user's
membership in it is required, and a user of another organisation gets 404 (not 403), so that slugs
of other customers cannot be probed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

from contracts.models import Membership
from contracts.tenancy.roles import Permission, permission_require, role_may


def membership_for(*, user, org_slug: str) -> Membership:
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=org_slug)
        .first()
    )
    if membership is None:
        raise Http404("No such organisation.")
    return membership


def org_view(permission: Permission = Permission.VIEW) -> Callable:
    """Load request.org and request.membership; refuse a role without `permission` with 403."""

    def decorator(view: Callable) -> Callable:
        @login_required
        @functools.wraps(view)
        def wrapped(request: HttpRequest, org: str, *args, **kwargs) -> HttpResponse:
            membership = membership_for(user=request.user, org_slug=org)
            request.org = membership.organization
            request.membership = membership
            permission_require(membership.role, permission)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def may(request: HttpRequest, permission: Permission) -> bool:
    """Whether the signed-in member may do `permission` here (pages show or hide actions with it)."""
    return role_may(request.membership.role, permission)

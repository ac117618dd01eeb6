"""Organisation context for the pages: who may see which organisation, in which role.

Every customer-scoped page goes through `org_view`: the organisation comes from the URL, the user's
membership in it is required, and a user of another organisation gets 404 (not 403), so that slugs
of other customers cannot be probed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

from contracts.errors import Forbidden
from contracts.models import Membership, Role


def membership_for(*, user, org_slug: str) -> Membership:
    membership = (
        Membership.objects.select_related("organization")
        .filter(user=user, organization__slug=org_slug)
        .first()
    )
    if membership is None:
        raise Http404("No such organisation.")
    return membership


def org_view(roles: Iterable[str] | None = None) -> Callable:
    """Load request.org and request.membership; refuse roles outside `roles` with 403."""
    allowed = set(roles) if roles else None

    def decorator(view: Callable) -> Callable:
        @login_required
        @functools.wraps(view)
        def wrapped(request: HttpRequest, org: str, *args, **kwargs) -> HttpResponse:
            membership = membership_for(user=request.user, org_slug=org)
            request.org = membership.organization
            request.membership = membership
            if allowed is not None and membership.role not in allowed:
                raise Forbidden(
                    f"This needs the {' or '.join(sorted(allowed))} role; you are {membership.role}.",
                    fields={"role": membership.role},
                )
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def require_role(request: HttpRequest, *roles: str) -> None:
    """Refuse (403) unless the current membership has one of `roles`."""
    if request.membership.role not in roles:
        raise Forbidden(
            f"This needs the {' or '.join(sorted(roles))} role; you are {request.membership.role}.",
            fields={"role": request.membership.role},
        )


ADMIN_ONLY = (Role.ADMIN,)
ADMIN_OR_LEGAL = (Role.ADMIN, Role.LEGAL)

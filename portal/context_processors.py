from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from contracts.consent.selectors import terms_pending
from contracts.models import Membership


def _current_section(request: HttpRequest, org) -> str:
    """The first path segment after /o/<org>/ ("" for the dashboard), for aria-current in the nav."""
    if org is None:
        return ""
    prefix = f"/o/{org.slug}/"
    if not request.path.startswith(prefix):
        return ""
    rest = request.path[len(prefix) :]
    section = rest.split("/", 1)[0]
    return "snapshots" if section == "snapshots" else section


# The organisation's navigation, in order: (label, path under /o/<org>/, sections it is current for).
# A new area adds one line; the nav bar and its narrow-screen menu both render from this list.
ORG_NAV: list[tuple[str, str, tuple[str, ...]]] = [
    ("Pins", "", ("", "snapshots")),
    ("Timeline", "timeline/", ("timeline",)),
    ("Changelog", "changelog/", ("changelog",)),
    ("Migrations", "migrations/", ("migrations",)),
    ("Consents", "consents/", ("consents", "terms")),
    ("Usage", "usage/", ("usage",)),
    ("Bug reports", "bugs/", ("bugs",)),
    ("Notifications", "notifications/", ("notifications",)),
    ("Exports", "exports/", ("exports",)),
    ("Billing", "billing/", ("billing",)),
    ("Settings", "settings/", ("settings", "pins")),
]


def _org_nav(org, section: str) -> list[dict]:
    if org is None:
        return []
    return [
        {"label": label, "href": f"/o/{org.slug}/{path}", "current": section in sections}
        for label, path, sections in ORG_NAV
    ]


def portal(request: HttpRequest) -> dict:
    """Navigation context: the current organisation and membership (set by org_view), the
    organisations the user may switch to, and the section of the page for the nav."""
    org = getattr(request, "org", None)
    user = getattr(request, "user", None)
    memberships = []
    if org is not None and user is not None and user.is_authenticated:
        memberships = list(
            Membership.objects.filter(user=user).select_related("organization").order_by("organization__name")
        )
    section = _current_section(request, org)
    return {
        "current_org": org,
        "current_membership": getattr(request, "membership", None),
        "user_memberships": memberships,
        "current_section": section,
        "org_nav": _org_nav(org, section),
        # The current terms of the organisation's tier when it has not accepted them (banner on every page).
        "terms_banner": terms_pending(org=org) if org is not None else None,
        "DEBUG": settings.DEBUG,
    }

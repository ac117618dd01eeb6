from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    """Navigation context: the current organisation and membership (set by org_view)."""
    return {
        "current_org": getattr(request, "org", None),
        "current_membership": getattr(request, "membership", None),
        "DEBUG": settings.DEBUG,
    }

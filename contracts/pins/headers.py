"""The lifecycle headers of a resolution: Deprecation (RFC 9745), Sunset (RFC 8594) and Link, the same
on the warm path (contracts.pins.hotpath) and the full API view."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils.http import http_date
from rest_framework.request import Request

from contracts.catalog.selectors import successor_newest_active
from contracts.models import Snapshot, SnapshotStatus


def lifecycle_headers(
    snapshot: dict[str, Any], request: Request, *, extended_support_until: str | None = None
) -> dict[str, str]:
    """Deprecation (RFC 9745), Sunset (RFC 8594) and Link headers for a deprecated snapshot.

    Sunset is the date this organisation stops being served: the retirement date, or the end of
    its extended support when that is later. `rel="deprecation"` links a page a person can read
    (the vendor's notice, else the public deprecation page); `rel="successor-version"` names the
    newest active successor, never a replacement that is itself deprecated."""
    if not snapshot.get("deprecated_at") or snapshot["status"] not in (
        SnapshotStatus.DEPRECATED,
        SnapshotStatus.RETIRED,
        SnapshotStatus.PURGED,
    ):
        return {}
    deprecated_at = dt.datetime.fromisoformat(snapshot["deprecated_at"])
    headers = {"Deprecation": f"@{int(deprecated_at.timestamp())}"}
    notice = snapshot.get("deprecation_notice_url") or request.build_absolute_uri(
        reverse("portal:snapshot_deprecation", kwargs={"snapshot_id": snapshot["id"]})
    )
    links = [f'<{notice}>; rel="deprecation"; type="text/html"']
    sunset = [dt.datetime.fromisoformat(v) for v in (snapshot.get("retires_at"), extended_support_until) if v]
    if sunset:
        headers["Sunset"] = http_date(max(sunset).timestamp())
    current = Snapshot.objects.select_related("replacement").filter(name=snapshot["id"]).first()
    successor = successor_newest_active(snapshot=current) if current is not None else None
    if successor is not None:
        url = request.build_absolute_uri(
            reverse("api:snapshot-detail", kwargs={"snapshot_id": successor.name})
        )
        links.append(f'<{url}>; rel="successor-version"')
    headers["Link"] = ", ".join(links)
    return headers

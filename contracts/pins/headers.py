"""The lifecycle headers of a resolution: Deprecation (RFC 9745), Sunset (RFC 8594) and Link, the same
on the warm path (contracts.pins.hotpath) and the full API view."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils.http import http_date
from rest_framework.request import Request

from contracts.models import SnapshotStatus


def lifecycle_headers(snapshot: dict[str, Any], request: Request) -> dict[str, str]:
    """Deprecation (RFC 9745), Sunset (RFC 8594) and Link headers for a deprecated snapshot."""
    if not snapshot.get("deprecated_at") or snapshot["status"] not in (
        SnapshotStatus.DEPRECATED,
        SnapshotStatus.RETIRED,
        SnapshotStatus.PURGED,
    ):
        return {}
    deprecated_at = dt.datetime.fromisoformat(snapshot["deprecated_at"])
    headers = {"Deprecation": f"@{int(deprecated_at.timestamp())}"}
    links = []
    notice = snapshot.get("deprecation_notice_url") or request.build_absolute_uri(
        reverse("api:snapshot-changelog", kwargs={"snapshot_id": snapshot["id"]})
    )
    links.append(f'<{notice}>; rel="deprecation"; type="application/json"')
    if snapshot.get("retires_at"):
        headers["Sunset"] = http_date(dt.datetime.fromisoformat(snapshot["retires_at"]).timestamp())
    if snapshot.get("replacement"):
        successor = request.build_absolute_uri(
            reverse("api:snapshot-detail", kwargs={"snapshot_id": snapshot["replacement"]})
        )
        links.append(f'<{successor}>; rel="successor-version"')
    headers["Link"] = ", ".join(links)
    return headers

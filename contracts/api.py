"""REST API of the catalog, pins and resolve. One APIView per operation; views stay thin."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts import hotpath, selectors
from contracts.auth import request_organization
from contracts.models import SnapshotStatus
from portal.exceptions import ApplicationError


class ErrorSerializer(serializers.Serializer):
    """The error envelope every endpoint answers with on failure."""

    error = inline_serializer(
        "ErrorBody",
        fields={
            "code": serializers.CharField(),
            "message": serializers.CharField(),
            "fields": serializers.DictField(child=serializers.JSONField()),
        },
    )


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names each bad field."),
    401: OpenApiResponse(ErrorSerializer, description="Missing, unknown or revoked API key."),
    403: OpenApiResponse(ErrorSerializer, description="Authenticated but not allowed."),
    404: OpenApiResponse(ErrorSerializer, description="Not found (or another organisation's)."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests for this key."),
}


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: ERRORS[code] for code in codes}


class SnapshotOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="name")
    family = serializers.CharField(source="family.slug")
    digest = serializers.CharField()
    config = serializers.JSONField()
    status = serializers.ChoiceField(choices=SnapshotStatus.choices)
    released_at = serializers.DateTimeField()
    deprecated_at = serializers.DateTimeField(allow_null=True)
    retires_at = serializers.DateTimeField(allow_null=True)
    retention_until = serializers.DateTimeField(allow_null=True)
    replacement = serializers.CharField(source="replacement.name", allow_null=True, default=None)


class SnapshotListApi(APIView):
    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "SnapshotFilter"

        family = serializers.SlugField(required=False, max_length=64)
        status = serializers.ChoiceField(choices=SnapshotStatus.choices, required=False)

    @extend_schema(
        operation_id="snapshots_list",
        parameters=[FilterSerializer],
        responses={200: SnapshotOutputSerializer(many=True), **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        snapshots = selectors.snapshot_list(**filters.validated_data)
        return Response(SnapshotOutputSerializer(snapshots, many=True).data)


class SnapshotDetailApi(APIView):
    @extend_schema(
        operation_id="snapshots_retrieve", responses={200: SnapshotOutputSerializer, **errors(401, 404)}
    )
    def get(self, request: Request, snapshot_id: str) -> Response:
        snapshot = selectors.snapshot_get(name=snapshot_id)
        return Response(SnapshotOutputSerializer(snapshot).data)


class SnapshotChangelogApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ChangelogEntry"

        kind = serializers.CharField()
        title = serializers.CharField()
        body = serializers.CharField()
        published_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="snapshots_changelog", responses={200: OutputSerializer(many=True), **errors(401, 404)}
    )
    def get(self, request: Request, snapshot_id: str) -> Response:
        snapshot = selectors.snapshot_get(name=snapshot_id)
        return Response(self.OutputSerializer(snapshot.changelog.all(), many=True).data)


class AliasHistoryApi(APIView):
    class MoveSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AliasMove"

        from_snapshot = serializers.CharField(source="from_snapshot.name", allow_null=True, default=None)
        to_snapshot = serializers.CharField(source="to_snapshot.name")
        moved_at = serializers.DateTimeField()
        reason = serializers.CharField()

    @extend_schema(
        operation_id="aliases_history",
        responses={
            200: inline_serializer(
                "AliasHistory",
                fields={
                    "alias": serializers.CharField(),
                    "family": serializers.CharField(),
                    "target": serializers.CharField(),
                    "moves": MoveSerializer(many=True),
                },
            ),
            **errors(401, 404),
        },
    )
    def get(self, request: Request, name: str) -> Response:
        alias, moves = selectors.alias_history(name=name)
        return Response(
            {
                "alias": alias.name,
                "family": alias.family.slug,
                "target": alias.target.name,
                "moves": self.MoveSerializer(moves, many=True).data,
            }
        )


class PinListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Pin"

        id = serializers.IntegerField()
        alias = serializers.CharField(source="alias.name")
        snapshot = serializers.CharField(source="snapshot.name")
        status = serializers.CharField(source="snapshot.status")
        policy = serializers.CharField()
        retires_at = serializers.DateTimeField(source="snapshot.retires_at", allow_null=True)
        open_migrations = serializers.IntegerField()
        updated_at = serializers.DateTimeField()

    @extend_schema(operation_id="pins_list", responses={200: OutputSerializer(many=True), **errors(401)})
    def get(self, request: Request) -> Response:
        org = request_organization(request)
        return Response(self.OutputSerializer(selectors.pin_list(org=org), many=True).data)


def parse_instant(value: str, *, field: str) -> dt.datetime:
    """An ISO 8601 instant with a time zone (a date alone means midnight UTC)."""
    parsed = None
    try:
        parsed = parse_datetime(value)
        if parsed is None:
            parsed = dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tzinfo=dt.UTC)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ApplicationError(
            f"{field} must be an ISO 8601 date-time such as 2025-09-29T12:00:00Z.",
            fields={field: "Expected ISO 8601, e.g. 2025-09-29T12:00:00Z."},
        )
    if parsed.tzinfo is None:
        raise ApplicationError(
            f"{field} must carry a time zone (Z or ±HH:MM).",
            fields={field: "Expected ISO 8601 with a time zone, e.g. 2025-09-29T12:00:00Z."},
        )
    return parsed


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


class ResolveApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Resolution"

        alias = serializers.CharField()
        organization = serializers.CharField()
        at = serializers.DateTimeField(allow_null=True)
        source = serializers.ChoiceField(choices=["pin", "alias-default"])
        policy = serializers.CharField(allow_null=True)
        extended_support_until = serializers.DateTimeField(
            allow_null=True, help_text="End of this organisation's paid extended support of the snapshot, if any."
        )
        snapshot = inline_serializer(
            "ResolvedSnapshot",
            fields={
                "id": serializers.CharField(),
                "family": serializers.CharField(),
                "digest": serializers.CharField(),
                "status": serializers.CharField(),
                "released_at": serializers.DateTimeField(),
                "deprecated_at": serializers.DateTimeField(allow_null=True),
                "retires_at": serializers.DateTimeField(allow_null=True),
                "retention_until": serializers.DateTimeField(allow_null=True),
                "replacement": serializers.CharField(allow_null=True),
                "deprecation_notice_url": serializers.CharField(allow_null=True),
                "config": serializers.JSONField(),
            },
        )

    def dispatch(self, request, *args, **kwargs):
        # The warm path answers without DRF's machinery; anything unusual falls through to get().
        return hotpath.resolve_response(request, kwargs["alias"]) or super().dispatch(request, *args, **kwargs)

    @extend_schema(
        operation_id="resolve_alias",
        parameters=[
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description="Resolve as of this instant (ISO 8601 with time zone) instead of now.",
            )
        ],
        responses={200: OutputSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request, alias: str) -> Response:
        org = request_organization(request)
        at_raw = request.query_params.get("at")
        at = parse_instant(at_raw, field="at") if at_raw is not None else None
        resolution = selectors.resolve(org=org, alias=alias, at=at)
        payload = resolution.as_dict()
        return Response(payload, headers=lifecycle_headers(payload["snapshot"], request))


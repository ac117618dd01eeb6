"""REST API of pins and resolve, with the RFC 9745 / RFC 8594 lifecycle headers."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.http import CONDITIONAL, NOT_MODIFIED, errors
from contracts.instants import parse_instant
from contracts.models import SnapshotStatus, UpgradePolicy
from contracts.pagination import LINK_HEADER, PageSerializer, page_params, paged_response
from contracts.pins import hotpath, selectors
from contracts.pins.headers import lifecycle_headers
from contracts.tenancy.auth import request_organization


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

    class FilterSerializer(PageSerializer):
        """The dashboard's filters."""

        class Meta:
            ref_name = "PinFilter"

        status = serializers.ChoiceField(choices=SnapshotStatus.choices, required=False)
        family = serializers.SlugField(required=False, max_length=64)
        policy = serializers.ChoiceField(choices=UpgradePolicy.choices, required=False)
        q = serializers.CharField(
            required=False, max_length=100, help_text="In alias, snapshot or family name."
        )

    @extend_schema(
        operation_id="pins_list",
        parameters=[FilterSerializer, *CONDITIONAL, LINK_HEADER],
        responses={200: OutputSerializer(many=True), **NOT_MODIFIED, **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        params = page_params(self.FilterSerializer, request)
        org = request_organization(request)
        filters = {k: params.get(k) for k in ("status", "family", "policy", "q")}
        return paged_response(
            request,
            selectors.pin_list(org=org, **filters),
            name="pins",
            org_id=org.pk,
            params=params,
            order=("alias__name", "id"),
            serializer_class=self.OutputSerializer,
        )


RESOLVE_HEADERS_DESCRIPTION = """The snapshot that serves (or served at `at`) this organisation on the alias.

For a deprecated, retired or purged snapshot the response carries:

* `Deprecation: @<unix time>` (RFC 9745): when the snapshot was deprecated.
* `Sunset: <HTTP date>` (RFC 8594): when it stops serving this organisation: its retirement date,
  or the end of the organisation's extended support when that is later.
* `Link`: `<url>; rel="deprecation"; type="text/html"`, a public page a person can read about the
  deprecation (no customer data), and `<url>; rel="successor-version"`, the API address of the
  newest active successor in the family (omitted when none serves).
"""

LIFECYCLE_RESPONSE_HEADERS = [
    OpenApiParameter(
        "Deprecation",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200],
        description="RFC 9745: `@<unix time>` of the deprecation (deprecated, retired or purged snapshots).",
    ),
    OpenApiParameter(
        "Sunset",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200],
        description="RFC 8594: HTTP date when the snapshot stops serving this organisation "
        "(retirement, or the end of its extended support when later).",
    ),
    OpenApiParameter(
        "Link",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200],
        description='`rel="deprecation"` (a public HTML page about the deprecation) and '
        '`rel="successor-version"` (the newest active successor).',
    ),
]


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
            allow_null=True,
            help_text="End of this organisation's paid extended support of the snapshot, if any.",
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
        return hotpath.resolve_response(request, kwargs["alias"]) or super().dispatch(
            request, *args, **kwargs
        )

    @extend_schema(
        operation_id="resolve_alias",
        description=RESOLVE_HEADERS_DESCRIPTION,
        parameters=[
            OpenApiParameter(
                "at",
                OpenApiTypes.DATETIME,
                description="Resolve as of this instant (ISO 8601 with time zone) instead of now.",
            ),
            *CONDITIONAL,
            *LIFECYCLE_RESPONSE_HEADERS,
        ],
        responses={200: OutputSerializer, **NOT_MODIFIED, **errors(400, 401, 404)},
    )
    def get(self, request: Request, alias: str) -> Response:
        org = request_organization(request)
        at_raw = request.query_params.get("at")
        at = parse_instant(at_raw, field="at") if at_raw is not None else None
        resolution = selectors.resolve(org=org, alias=alias, at=at)
        payload = resolution.as_dict()
        headers = lifecycle_headers(
            payload["snapshot"], request, extended_support_until=payload["extended_support_until"]
        )
        return Response(payload, headers=headers)

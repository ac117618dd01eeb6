"""REST API of the catalog: snapshots, their changelog, alias history. One APIView per operation."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.catalog import selectors
from contracts.http import CONDITIONAL, NOT_MODIFIED, errors
from contracts.models import SnapshotStatus
from contracts.pagination import LINK_HEADER, PageSerializer, page_params, paged_response


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
    class FilterSerializer(PageSerializer):
        class Meta:
            ref_name = "SnapshotFilter"

        family = serializers.SlugField(required=False, max_length=64)
        status = serializers.ChoiceField(choices=SnapshotStatus.choices, required=False)

    @extend_schema(
        operation_id="snapshots_list",
        parameters=[FilterSerializer, *CONDITIONAL, LINK_HEADER],
        responses={200: SnapshotOutputSerializer(many=True), **NOT_MODIFIED, **errors(400, 401)},
    )
    def get(self, request: Request) -> Response:
        params = page_params(self.FilterSerializer, request)
        snapshots = selectors.snapshot_list(family=params.get("family"), status=params.get("status"))
        return paged_response(
            request,
            snapshots,
            name="snapshots",
            org_id=None,
            params=params,
            order=("family__slug", "released_at", "id"),
            serializer_class=SnapshotOutputSerializer,
        )


class SnapshotDetailApi(APIView):
    @extend_schema(
        operation_id="snapshots_retrieve",
        parameters=CONDITIONAL,
        responses={200: SnapshotOutputSerializer, **NOT_MODIFIED, **errors(401, 404)},
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
        operation_id="snapshots_changelog",
        parameters=[PageSerializer, LINK_HEADER],
        responses={200: OutputSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request, snapshot_id: str) -> Response:
        params = page_params(PageSerializer, request)
        snapshot = selectors.snapshot_get(name=snapshot_id)
        return paged_response(
            request,
            snapshot.changelog.all(),
            name=f"changelog:{snapshot.pk}",
            org_id=None,
            params=params,
            order=("-published_at", "-id"),
            serializer_class=self.OutputSerializer,
        )


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
            **errors(400, 401, 404),
        },
        parameters=[PageSerializer, LINK_HEADER],
    )
    def get(self, request: Request, name: str) -> Response:
        params = page_params(PageSerializer, request)
        alias = selectors.alias_get(name=name)
        return paged_response(
            request,
            selectors.alias_moves(alias=alias),
            name=f"alias-history:{alias.pk}",
            org_id=None,
            params=params,
            order=("moved_at", "id"),
            serializer_class=self.MoveSerializer,
            body=lambda moves, _next: {
                "alias": alias.name,
                "family": alias.family.slug,
                "target": alias.target.name,
                "moves": moves,
            },
        )

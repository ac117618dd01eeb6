"""REST API of the catalog: snapshots, their changelog, alias history. One APIView per operation."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.catalog import selectors
from contracts.http import errors
from contracts.models import SnapshotStatus


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

"""`GET audit-log/`: the organisation's audit log of admin actions (admins, legal, organisation keys)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.audit import selectors
from contracts.http import InstantField, errors
from contracts.models import ActorKind, AuditAction
from contracts.tenancy.auth import request_organization, request_role
from contracts.tenancy.roles import Permission, permission_require


class AuditEntryOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "AuditEntry"

    id = serializers.IntegerField(source="pk")
    created_at = serializers.DateTimeField()
    action = serializers.ChoiceField(choices=AuditAction.choices)
    actor_kind = serializers.ChoiceField(choices=ActorKind.choices)
    actor = serializers.CharField(
        source="actor_label", help_text="E-mail, api-key:<prefix>, scim-token:<id>."
    )
    target_type = serializers.CharField()
    target_id = serializers.CharField()
    target = serializers.CharField(source="target_label")
    before = serializers.DictField(child=serializers.JSONField())
    after = serializers.DictField(child=serializers.JSONField())
    ip = serializers.IPAddressField(allow_null=True)
    user_agent = serializers.CharField()


class AuditLogApi(APIView):
    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AuditFilter"

        action = serializers.ChoiceField(choices=AuditAction.choices, required=False)
        actor = serializers.CharField(required=False, max_length=254, help_text="Actor label contains.")
        target_type = serializers.CharField(required=False, max_length=40)
        to = InstantField(required=False, help_text="Entries at or before this instant.")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)
        offset = serializers.IntegerField(required=False, min_value=0, max_value=10**9, default=0)

    FilterSerializer._declared_fields["from"] = InstantField(
        required=False, help_text="Entries at or after this instant."
    )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AuditPage"

        count = serializers.IntegerField()
        results = AuditEntryOutputSerializer(many=True)

    @extend_schema(
        operation_id="audit_log_list",
        parameters=[FilterSerializer],
        responses={200: OutputSerializer, **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        org = request_organization(request)
        permission_require(request_role(request), Permission.VIEW_AUDIT_LOG)
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        qs = selectors.audit_list(
            org=org,
            action=params.get("action"),
            actor=params.get("actor"),
            target_type=params.get("target_type"),
            since=params.get("from"),
            until=params.get("to"),
        )
        offset, limit = params["offset"], params["limit"]
        return Response(
            {
                "count": qs.count(),
                "results": AuditEntryOutputSerializer(qs[offset : offset + limit], many=True).data,
            }
        )

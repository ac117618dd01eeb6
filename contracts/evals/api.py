"""REST API of evals: staff upload results and golden samples; an organisation admin marks a baseline."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.catalog import selectors
from contracts.errors import Forbidden
from contracts.evals import selectors as evals_selectors
from contracts.evals import services as evals_services
from contracts.http import ErrorSerializer, errors
from contracts.tenancy.auth import (
    IsOrganizationMember,
    IsStaff,
    client_ip,
    request_organization,
    request_role,
)
from contracts.tenancy.roles import Permission, role_may

CONFLICT = OpenApiResponse(
    ErrorSerializer, description="A result for this suite and snapshot already exists."
)


def _actor(request: Request):
    user = request.user
    return user if getattr(user, "pk", None) else None


class EvalResultOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "EvalResult"

    id = serializers.IntegerField()
    suite = serializers.CharField(source="suite.slug")
    snapshot = serializers.CharField(source="snapshot.name")
    scores = serializers.JSONField()
    created_at = serializers.DateTimeField()


class EvalUploadApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "EvalUpload"

        suite = serializers.CharField(max_length=100, help_text="Slug of an existing eval suite.")
        snapshot = serializers.CharField(max_length=100, help_text="Snapshot id, e.g. chat-2025-09-29.")
        scores = serializers.JSONField(
            help_text='{metric: {"score": number, "subsets": {name: number}}}; every metric of the suite.'
        )
        cases = serializers.JSONField(
            required=False, allow_null=True, help_text="Optional per-case outcomes (list)."
        )

    @extend_schema(
        operation_id="evals_upload",
        request=InputSerializer,
        responses={201: EvalResultOutputSerializer, **errors(400, 401, 403), 409: CONFLICT},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = evals_services.eval_result_upload(**data.validated_data, acting_user=_actor(request))
        return Response(EvalResultOutputSerializer(result).data, status=201)


class EvalBaselineApi(APIView):
    permission_classes = [IsOrganizationMember]

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProcurementBaseline"

        organization = serializers.CharField(source="organization.slug")
        suite = serializers.CharField(source="suite.slug")
        result_id = serializers.IntegerField(source="result.pk")
        snapshot = serializers.CharField(source="result.snapshot.name")
        marked_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="evals_baseline_mark",
        request=None,
        responses={200: OutputSerializer, **errors(401, 403, 404)},
    )
    def post(self, request: Request, result_id: int) -> Response:
        org = request_organization(request)
        result = evals_selectors.eval_result_get(org=org, result_id=result_id)
        if not role_may(request_role(request), Permission.MARK_BASELINE):
            raise Forbidden("Marking a procurement baseline needs the admin role.", fields={"role": "admin"})
        baseline = evals_services.baseline_mark(
            org=org,
            result=result,
            acting_user=_actor(request),
            ip=client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
        return Response(self.OutputSerializer(baseline).data)


class GoldenSampleInputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "GoldenSampleInput"

    prompt_id = serializers.CharField(max_length=100)
    prompt = serializers.CharField(
        required=False, allow_blank=True, max_length=100_000, trim_whitespace=False
    )
    output = serializers.CharField(allow_blank=True, max_length=100_000, trim_whitespace=False)


class GoldenSampleUploadApi(APIView):
    permission_classes = [IsStaff]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GoldenSampleUpload"

        samples = serializers.ListField(child=GoldenSampleInputSerializer(), min_length=1, max_length=1000)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GoldenSampleUploaded"

        snapshot = serializers.CharField()
        stored = serializers.IntegerField()

    @extend_schema(
        operation_id="snapshots_golden_samples_upload",
        request=InputSerializer,
        responses={201: OutputSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request, snapshot_id: str) -> Response:
        snapshot = selectors.snapshot_get(name=snapshot_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        stored = evals_services.golden_samples_upload(
            snapshot=snapshot, samples=data.validated_data["samples"]
        )
        return Response({"snapshot": snapshot.name, "stored": len(stored)}, status=201)

"""REST API of consent exports.

`GET consents/export/?format=csv|ndjson&from=&to=&snapshot=&action=&terms_version=`: CSV and NDJSON
stream in the response. `POST consents/export/ {"format": "pdf|bundle", "from", "to", ...}`: PDF and
bundle are built by a Celery task, started only by POST (a GET never starts a job): the answer
is 202 with the export id and `status_url` (`GET consents/exports/<id>/`), which gives the progress
and, when ready, `download_url`. Legal members, admins and organisation keys export their own
organisation; staff (a staff key or staff session) name one with `?org=<slug>` or all with `?org=*`.
"""

from __future__ import annotations

from django.db import transaction
from django.http import StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.errors import ApplicationError, Forbidden, NotFound
from contracts.http import ErrorSerializer, errors, export_file_response
from contracts.ledger import exports, tasks
from contracts.models import ConsentExport, ExportStatus, Organization
from contracts.tenancy.auth import request_organization, request_role
from contracts.tenancy.roles import Permission, role_may


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """`?format=` names the export format here, not a renderer; errors always answer in JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class IsAuthenticatedCaller(permissions.BasePermission):
    message = "Authenticate with an organisation API key or a session."

    def has_permission(self, request, view) -> bool:
        return bool(request.user is not None and request.user.is_authenticated)


def export_scope(request: Request) -> Organization | None:
    """The organisation an export covers (None: every organisation, staff only). 403/404 otherwise."""
    user = request.user
    slug = request.query_params.get("org")
    if user.is_staff and slug == "*":
        return None
    org = request_organization(request)
    if org is None:
        raise NotFound(
            "No organisation found for this request (use ?org=<slug>).", fields={"org": slug or ""}
        )
    if user.is_staff:
        return org
    role = request_role(request)
    if not role_may(role, Permission.EXPORT_LEDGER):
        raise Forbidden(f"Exports need the legal or admin role; you are {role}.", fields={"role": role})
    return org


def status_payload(export: ConsentExport) -> dict:
    ready = export.status == ExportStatus.READY and export.format in exports.BUILT_FORMATS
    return {
        "id": export.pk,
        "organization": export.organization.slug if export.organization_id else "*",
        "format": export.format,
        "status": export.status,
        "progress": export.progress,
        "filters": export.filters,
        "record_count": export.record_count,
        "file_sha256": export.file_sha256,
        "created_at": export.created_at,
        "finished_at": export.finished_at,
        "expires_at": export.expires_at,
        "error": export.error,
        "status_url": reverse("api:consent-export-status", kwargs={"export_id": export.pk}),
        "download_url": reverse("api:consent-export-download", kwargs={"export_id": export.pk})
        if ready
        else None,
    }


class ExportStatusSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ConsentExportStatus"

    id = serializers.IntegerField()
    organization = serializers.CharField(help_text="Organisation slug, or * for a staff export of all.")
    format = serializers.ChoiceField(choices=list(exports.FORMATS))
    status = serializers.ChoiceField(choices=ExportStatus.choices)
    progress = serializers.IntegerField(min_value=0, max_value=100)
    filters = serializers.DictField(child=serializers.CharField())
    record_count = serializers.IntegerField()
    file_sha256 = serializers.CharField(help_text="sha256 of the file; empty until it is ready.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField()
    status_url = serializers.CharField()
    download_url = serializers.CharField(allow_null=True)


FILTER_PARAMETERS = [
    OpenApiParameter(
        "format", str, enum=list(exports.STREAMED_FORMATS), required=True, description="Export format."
    ),
    OpenApiParameter("from", OpenApiTypes.STR, description="ISO 8601 date or date-time (inclusive)."),
    OpenApiParameter(
        "to", OpenApiTypes.STR, description="ISO 8601 date (whole day) or date-time (inclusive)."
    ),
    OpenApiParameter("snapshot", str, description="Records moving from or to this snapshot."),
    OpenApiParameter("action", str, description="One ledger action, e.g. consent."),
    OpenApiParameter("terms_version", str, description="Records given under this terms version."),
    OpenApiParameter("org", str, description="Staff: organisation slug, or * for every organisation."),
]


class ConsentExportApi(APIView):
    permission_classes = [IsAuthenticatedCaller]
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(
        operation_id="consents_export",
        parameters=FILTER_PARAMETERS,
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV, streamed."),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description="NDJSON, streamed."),
            **errors(400, 401, 403, 404, 429),
        },
    )
    def get(self, request: Request):
        fmt = exports.export_format_parse(request.query_params.get("format"))
        if fmt in exports.BUILT_FORMATS:
            raise ApplicationError(
                f'A {fmt} export is a background job: start it with POST (body {{"format": "{fmt}"}}).',
                fields={"format": "csv or ndjson with GET; pdf or bundle with POST"},
                code="use_post",
            )
        org = export_scope(request)
        filters = exports.export_filters_parse(request.query_params)
        user = request.user if getattr(request.user, "pk", None) else None
        export = exports.export_create(org=org, fmt=fmt, filters=filters, requested_by=user)
        response = StreamingHttpResponse(
            exports.export_stream(export=export, org=org, filters=filters),
            content_type=exports.CONTENT_TYPES[fmt],
        )
        response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(export)}"'
        response["X-Export-Id"] = str(export.pk)
        return response

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ConsentExportRequest"

        format = serializers.ChoiceField(choices=list(exports.BUILT_FORMATS))
        # "from" is a Python keyword: declared below under its public name.
        to = serializers.CharField(required=False, allow_blank=True, max_length=40)
        snapshot = serializers.CharField(required=False, allow_blank=True, max_length=100)
        action = serializers.CharField(required=False, allow_blank=True, max_length=32)
        terms_version = serializers.CharField(required=False, allow_blank=True, max_length=32)

    InputSerializer._declared_fields["from"] = serializers.CharField(
        required=False, allow_blank=True, max_length=40
    )

    @extend_schema(
        operation_id="consents_export_create",
        parameters=[FILTER_PARAMETERS[-1]],
        request=InputSerializer,
        responses={
            202: OpenApiResponse(ExportStatusSerializer, description="Queued: poll status_url."),
            **errors(400, 401, 403, 404, 429),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        org = export_scope(request)
        filters = exports.export_filters_parse(data.validated_data)
        user = request.user if getattr(request.user, "pk", None) else None
        export = exports.export_create(
            org=org, fmt=data.validated_data["format"], filters=filters, requested_by=user
        )

        transaction.on_commit(lambda: tasks.export_build.delay(export.pk))
        export.refresh_from_db()
        return Response(status_payload(export), status=202)


def _export_for(request: Request, export_id: int) -> ConsentExport:
    if request.user.is_staff:
        return exports.export_get(org=None, export_id=export_id)
    org = export_scope(request)
    return exports.export_get(org=org, export_id=export_id)


class ConsentExportStatusApi(APIView):
    permission_classes = [IsAuthenticatedCaller]
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(
        operation_id="consents_export_status",
        responses={200: ExportStatusSerializer, **errors(401, 403, 404, 429)},
    )
    def get(self, request: Request, export_id: int) -> Response:
        return Response(ExportStatusSerializer(status_payload(_export_for(request, export_id))).data)


class ConsentExportDownloadApi(APIView):
    permission_classes = [IsAuthenticatedCaller]
    content_negotiation_class = JsonOnlyNegotiation

    @extend_schema(
        operation_id="consents_export_download",
        responses={
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="The PDF."),
            (200, "application/zip"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The evidence bundle."
            ),
            409: OpenApiResponse(ErrorSerializer, description="Not ready yet, failed or expired."),
            **errors(401, 403, 404, 429),
        },
    )
    def get(self, request: Request, export_id: int):
        export = _export_for(request, export_id)
        return export_file_response(export)

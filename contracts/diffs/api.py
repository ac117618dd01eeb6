"""REST API of diffs: GET /api/v1/diffs/<a>...<b>/?format=json|md|html|pdf."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.http import FileResponse, HttpResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.diffs.selectors import (
    FORMATS,
    diff_build,
    diff_format_parse,
    diff_snapshots,
    pdf_renders_inline,
)
from contracts.diffs.services import FAILED, READY, diff_pdf_job_get, diff_pdf_job_start
from contracts.errors import Conflict
from contracts.http import ErrorSerializer, diff_file_response, errors
from contracts.tenancy.auth import request_organization


class JsonErrorsNegotiation(BaseContentNegotiation):
    """`format` names the diff's format here, not a DRF renderer: errors are always JSON."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


DIFF_SCHEMA_REF = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description=(
        "The diff. JSON follows contracts/diffs/schema.json (JSON Schema); md, html and pdf are "
        "downloads named diff_<a>...<b>.<format>."
    ),
)


PDF_JOB = inline_serializer(
    "DiffPdfJob",
    fields={
        "job": serializers.CharField(),
        "status": serializers.ChoiceField(choices=["pending", "running", "ready", "failed"]),
        "progress": serializers.IntegerField(min_value=0, max_value=100),
        "poll": serializers.CharField(help_text="GET this URL until it answers 200 with the PDF."),
    },
)


def _job_response(request: Request, a: str, b: str, job: dict[str, Any]) -> Response:
    poll = reverse("api:diff", kwargs={"a": a, "b": b}) + f"?format=pdf&job={job['id']}"
    body = {"job": job["id"], "status": job["status"], "progress": job["progress"], "poll": poll}
    return Response(body, status=202, headers={"Location": poll, "Retry-After": "2"})


class DiffApi(APIView):
    content_negotiation_class = JsonErrorsNegotiation

    @extend_schema(
        operation_id="diffs_retrieve",
        parameters=[
            OpenApiParameter(
                "format",
                OpenApiTypes.STR,
                enum=list(FORMATS),
                description="json (default), md, html or pdf.",
            ),
            OpenApiParameter(
                "job",
                OpenApiTypes.STR,
                description="With format=pdf: a job id from a 202 answer; 200 with the PDF once it is ready.",
            ),
            OpenApiParameter("a", OpenApiTypes.STR, OpenApiParameter.PATH, description="Snapshot id (from)."),
            OpenApiParameter(
                "b", OpenApiTypes.STR, OpenApiParameter.PATH, description="Snapshot id (to), same family."
            ),
        ],
        responses={
            (200, "application/json"): DIFF_SCHEMA_REF,
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="Markdown report."),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="Standalone HTML report."),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="PDF report."),
            202: OpenApiResponse(PDF_JOB, description="The PDF job (from ?job=) is still rendering."),
            **errors(400, 401, 404),
            409: OpenApiResponse(
                ErrorSerializer,
                description="The background PDF rendering failed, or a large diff's PDF was asked for "
                "by GET before a POST started its rendering.",
            ),
        },
    )
    def get(self, request: Request, a: str, b: str) -> HttpResponse:
        fmt = diff_format_parse(request.query_params.get("format"))
        org = request_organization(request)
        job_id = request.query_params.get("job")
        if fmt == "pdf" and job_id is not None:
            diff_snapshots(a=a, b=b)
            job = diff_pdf_job_get(org=org, a=a, b=b, job_id=job_id)
            path = Path(job.get("path") or "")
            if job["status"] == READY and path.is_file():
                return FileResponse(
                    path.open("rb"),
                    as_attachment=True,
                    filename=job["filename"],
                    content_type="application/pdf",
                )
            if job["status"] == FAILED:
                raise Conflict(f"The PDF could not be rendered: {job['error']}", fields={"job": job["error"]})
            return _job_response(request, a, b, job)
        document = diff_build(org=org, a=a, b=b)
        if fmt == "pdf" and not pdf_renders_inline(document):
            # A GET never starts work (a cross-site link could): the rendering is started by POST.
            raise Conflict(
                "This diff's PDF is rendered in the background: start it with POST to this URL "
                "(?format=pdf), then GET the poll URL it answers.",
                fields={"format": "pdf: POST to start the rendering"},
                code="use_post",
            )
        return diff_file_response(document, fmt, attachment=fmt != "json")

    @extend_schema(
        operation_id="diffs_pdf_start",
        request=None,
        parameters=[
            OpenApiParameter("a", OpenApiTypes.STR, OpenApiParameter.PATH, description="Snapshot id (from)."),
            OpenApiParameter(
                "b", OpenApiTypes.STR, OpenApiParameter.PATH, description="Snapshot id (to), same family."
            ),
        ],
        responses={
            202: OpenApiResponse(PDF_JOB, description="The PDF rendering started: poll the Location."),
            **errors(400, 401, 404),
        },
    )
    def post(self, request: Request, a: str, b: str) -> Response:
        """Start rendering the diff's PDF in the background (any size); answers the job to poll."""
        org = request_organization(request)
        job_id = diff_pdf_job_start(org=org, a=a, b=b)
        return _job_response(request, a, b, diff_pdf_job_get(org=org, a=a, b=b, job_id=job_id))

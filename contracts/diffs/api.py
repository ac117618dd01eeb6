"""REST API of diffs: GET /api/v1/diffs/<a>...<b>/?format=json|md|html|pdf."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.request import Request
from rest_framework.views import APIView

from contracts.api import errors
from contracts.auth import request_organization
from contracts.diffs import CONTENT_TYPES, FORMATS, diff_build, diff_filename
from contracts.diffs.render import render
from portal.exceptions import ApplicationError


def parse_format(value: str | None) -> str:
    fmt = (value or "json").lower()
    if fmt not in FORMATS:
        raise ApplicationError(
            f"format must be one of {', '.join(FORMATS)}.", fields={"format": f"One of: {', '.join(FORMATS)}."}
        )
    return fmt


def download_response(document: dict[str, Any], fmt: str, *, attachment: bool = True) -> HttpResponse:
    """The rendered diff with its content type and a filename like diff_a...b.pdf."""
    response = HttpResponse(render(document, fmt), content_type=CONTENT_TYPES[fmt])
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{diff_filename(document["a"]["id"], document["b"]["id"], fmt)}"'
    response["X-Content-SHA256"] = document["content_sha256"]
    return response


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
            OpenApiParameter("a", OpenApiTypes.STR, OpenApiParameter.PATH, description="Snapshot id (from)."),
            OpenApiParameter("b", OpenApiTypes.STR, OpenApiParameter.PATH, description="Snapshot id (to), same family."),
        ],
        responses={
            (200, "application/json"): DIFF_SCHEMA_REF,
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR, description="Markdown report."),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="Standalone HTML report."),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY, description="PDF report."),
            **errors(400, 401, 404),
        },
    )
    def get(self, request: Request, a: str, b: str) -> HttpResponse:
        fmt = parse_format(request.query_params.get("format"))
        org = request_organization(request)
        document = diff_build(org=org, a=a, b=b)
        return download_response(document, fmt, attachment=fmt != "json")

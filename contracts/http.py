"""What the REST API and the pages share at the HTTP boundary: the error serializer the schema
describes, the common error responses, and file responses."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.http import FileResponse, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from contracts.diffs.render import render
from contracts.diffs.selectors import CONTENT_TYPES, diff_filename
from contracts.errors import ApplicationError, Conflict
from contracts.instants import parse_instant
from contracts.ledger import exports
from contracts.models import ConsentExport, ExportStatus
from contracts.text import CONTROL_CHARACTERS_MESSAGE, has_control_characters


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


class InstantField(serializers.DateTimeField):
    """A date-time in a serializer, read by the one instant parser (contracts.instants): a zone is
    required, a date alone is midnight UTC, years 2000 to 2999. Written out like DRF's DateTimeField."""

    def to_internal_value(self, value: Any) -> dt.datetime:
        if not isinstance(value, str):
            self.fail("invalid", format="ISO 8601")
        try:
            return parse_instant(value, field=self.field_name or "value", bounded=True)
        except ApplicationError as refusal:
            raise serializers.ValidationError(refusal.fields.get(self.field_name, refusal.message)) from None


# File responses: the same downloads from the pages and the API.


def export_file_response(export: ConsentExport) -> FileResponse:
    """The built file of a ready export; Conflict (409) while it is not ready, or once expired."""

    if (
        export.format not in exports.BUILT_FORMATS
        or export.status != ExportStatus.READY
        or not export.file_path
    ):
        raise Conflict(
            f"Export #{export.pk} is {export.status}, not a ready file.", fields={"status": export.status}
        )
    path = Path(settings.MEDIA_ROOT) / export.file_path
    if not path.exists():
        raise Conflict(f"The file of export #{export.pk} is gone.", fields={"status": "expired"})
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=exports.export_filename(export),
        content_type=exports.CONTENT_TYPES[export.format],
    )  # fmt: skip


def diff_file_response(document: dict[str, Any], fmt: str, *, attachment: bool = True) -> HttpResponse:
    """The rendered diff with its content type and a filename like diff_a...b.pdf."""
    response = HttpResponse(render(document, fmt), content_type=CONTENT_TYPES[fmt])
    disposition = "attachment" if attachment else "inline"
    response["Content-Disposition"] = (
        f'{disposition}; filename="{diff_filename(document["a"]["id"], document["b"]["id"], fmt)}"'
    )
    response["X-Content-SHA256"] = document["content_sha256"]
    return response


class BoundedJSONParser(JSONParser):
    """JSON bodies, bounded: at most API_MAX_BODY_BYTES, nested at most API_MAX_JSON_DEPTH deep, a
    JSON object at the top, and no control characters in keys or strings. Anything else is a 400 in
    the envelope (never the RecursionError that deep nesting gives the standard parser)."""

    def parse(self, stream, media_type=None, parser_context=None) -> dict[str, Any]:
        limit = settings.API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        return json_body_parse(raw, encoding=encoding)


def json_body_parse(
    raw: bytes, *, encoding: str = "utf-8", control_characters: bool = False
) -> dict[str, Any]:
    """A request body as BoundedJSONParser accepts it (ParseError otherwise). Empty: {}."""
    limit = settings.API_MAX_BODY_BYTES
    if len(raw) > limit:
        raise ParseError(f"The request body is larger than {limit} bytes.")
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw.decode(encoding))
    except RecursionError as exc:
        raise ParseError(f"JSON nested deeper than {settings.API_MAX_JSON_DEPTH} levels.") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"JSON parse error: {exc}.") from exc
    if not isinstance(data, dict):
        raise ParseError("The request body must be a JSON object.")
    json_check(data, max_depth=settings.API_MAX_JSON_DEPTH, control_characters=control_characters)
    return data


def json_check(data: Any, *, max_depth: int, control_characters: bool = False) -> None:
    """Refuse (ParseError) nesting beyond `max_depth` and, unless `control_characters`, control
    characters in keys and strings; iterative, no recursion."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise ParseError(f"JSON nested deeper than {max_depth} levels.")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not control_characters and has_control_characters(key):
                        raise ParseError(f"A JSON key {CONTROL_CHARACTERS_MESSAGE}.")
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and not control_characters and has_control_characters(value):
            raise ParseError(f"A JSON string {CONTROL_CHARACTERS_MESSAGE}.")


# Conditional GET (django.middleware.http.ConditionalGetMiddleware sets a strong ETag on every
# non-streamed 200 and answers 304 to a matching If-None-Match): how the schema says so.
CONDITIONAL = [
    OpenApiParameter(
        "If-None-Match",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="An ETag of an earlier response: 304 (no body) while the resource is unchanged.",
    ),
    OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=[200, 304],
        description="The version of this representation; send it back as If-None-Match.",
    ),
]
NOT_MODIFIED = {304: OpenApiResponse(description="Not modified since the ETag in If-None-Match (no body).")}

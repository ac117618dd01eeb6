"""What the REST API and the pages share at the HTTP boundary: the error serializer the schema
describes, the common error responses, and file responses."""

from __future__ import annotations

import datetime as dt
from typing import Any

from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from contracts.errors import ApplicationError
from contracts.instants import parse_instant


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

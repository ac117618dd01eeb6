"""The error envelope both the API and the pages speak, and the mapping of domain errors onto it.

Envelope: {"error": {"code": ..., "message": ..., "fields": {...}}}
"""

from __future__ import annotations

import logging
from typing import Any

from django import db
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from contracts.errors import ApplicationError

log = logging.getLogger(__name__)


def envelope(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_envelope(error: ApplicationError) -> dict[str, Any]:
    return envelope(error.code, error.message, error.fields)


def _flatten(detail: Any) -> Any:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    if isinstance(detail, list):
        flat = [_flatten(item) for item in detail]
        return flat[0] if len(flat) == 1 and isinstance(flat[0], str) else flat
    return str(detail)


DATABASE_UNAVAILABLE = (
    "The database is unavailable; the request was not completed. Retry in a few seconds: a decision "
    "that was recorded is refused as a conflict on retry, never recorded twice."
)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler: every error leaves the API in the envelope."""
    if isinstance(exc, db.OperationalError | db.InterfaceError):
        log.warning("database unavailable: %s", type(exc).__name__, exc_info=exc)
        return Response(
            envelope("unavailable", DATABASE_UNAVAILABLE),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "5"},
        )
    if isinstance(exc, ApplicationError):
        return Response(error_envelope(exc), status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        fields = exc.message_dict if hasattr(exc, "error_dict") else {}
        message = "; ".join(exc.messages)
        return Response(envelope("invalid", message, fields), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied(str(exc) or None)

    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, drf_exceptions.ValidationError):
        fields = _flatten(exc.detail) if isinstance(exc.detail, dict) else {}
        if isinstance(fields, dict) and fields:
            message = "; ".join(f"{name}: {value}" for name, value in fields.items())
        else:
            message = str(_flatten(exc.detail))
        response.data = envelope("invalid", message, fields if isinstance(fields, dict) else {})
    else:
        code = getattr(exc, "default_code", "error")
        detail = getattr(exc, "detail", str(exc))
        response.data = envelope(str(code), str(_flatten(detail)))
    return response

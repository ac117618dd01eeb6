"""The domain's refusals. Services raise them; the web layer (portal.exceptions) maps each to the
error envelope and its HTTP status, and nothing below the web layer knows about HTTP beyond the
status each kind of refusal stands for."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A refusal the user can act on: a message for people and, per input field, what was wrong.
    Subclasses fix the status and the code."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, fields: dict[str, Any] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class Conflict(ApplicationError):
    status_code = 409
    code = "conflict"


class Forbidden(ApplicationError):
    status_code = 403
    code = "forbidden"

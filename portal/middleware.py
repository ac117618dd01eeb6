"""Turns an ApplicationError raised by a page into a response: the error envelope for htmx and
JSON callers, an error page otherwise."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

from contracts.errors import ApplicationError
from portal.exceptions import error_envelope


class ApplicationErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ApplicationError):
            return None
        if request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", ""):
            return JsonResponse(error_envelope(exception), status=exception.status_code)
        template = "portal/_error.html" if getattr(request, "htmx", False) else "portal/error.html"
        response = TemplateResponse(
            request,
            template,
            {"error": exception, "status": exception.status_code},
            status=exception.status_code,
        )
        return response.render()

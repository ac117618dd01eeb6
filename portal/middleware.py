"""Request/response handling shared by every page and endpoint: domain errors as responses, the API's
error envelope for whatever Django itself answers under /api/, a lost database as a 503, refusal of
control characters in form fields, the Permissions-Policy header, the reader's time zone for every
page, the request id, the audit log's origin, and the organisations' sign-in policies."""

from __future__ import annotations

import json
import logging
import re
import uuid
import zoneinfo

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from django import db
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from rest_framework.exceptions import ParseError

from contracts.audit.origin import origin_bind, origin_reset
from contracts.errors import ApplicationError
from contracts.http import json_body_parse
from contracts.identity import selectors as identity_selectors
from contracts.tenancy.auth import client_ip
from contracts.tenancy.selectors import user_time_zone
from contracts.text import control_character_fields
from portal.exceptions import DATABASE_UNAVAILABLE, envelope, error_envelope

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    """The envelope for the API, htmx and JSON callers; the error page (or its fragment) otherwise."""
    if is_api(request) or "application/json" in request.headers.get("Accept", ""):
        return JsonResponse(error_envelope(error), status=error.status_code)
    template = "portal/_error.html" if getattr(request, "htmx", False) else "portal/error.html"
    response = TemplateResponse(
        request, template, {"error": error, "status": error.status_code}, status=error.status_code
    )
    return response.render()


# The session remembers the zone, so a page costs no query for it; the preferences page updates both.
TIME_ZONE_SESSION_KEY = "time_zone"


class TimeZoneMiddleware:
    """Activates the signed-in person's chosen time zone for pages (UTC for everyone else), so that
    `{{ value|instant }}` shows every instant in it. The API keeps answering in UTC."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and not is_api(request):
            name = request.session.get(TIME_ZONE_SESSION_KEY)
            if name is None:
                name = user_time_zone(user=user)
                request.session[TIME_ZONE_SESSION_KEY] = name
            try:
                timezone.activate(zoneinfo.ZoneInfo(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


class ApplicationErrorMiddleware:
    """Turns an ApplicationError raised by a page into a response."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, db.OperationalError | db.InterfaceError):
            # No template: rendering one would reach for the database (session, user) again.
            log.warning("database unavailable: %s", type(exception).__name__, exc_info=exception)
            if is_api(request) or "application/json" in request.headers.get("Accept", ""):
                response = JsonResponse(envelope("unavailable", DATABASE_UNAVAILABLE), status=503)
            else:
                response = HttpResponse(
                    "Service temporarily unavailable: please retry in a few seconds.\n",
                    status=503,
                    content_type="text/plain; charset=utf-8",
                )
            response["Retry-After"] = "5"
            return response
        if not isinstance(exception, ApplicationError):
            return None
        return error_response(request, exception)


ENVELOPE_CODES = {
    400: ("invalid", "The request could not be understood."),
    401: ("not_authenticated", "Authentication is needed."),
    403: ("forbidden", "You do not have permission to do this."),
    404: ("not_found", "No API route or object at this path."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("too_large", "The request body is too large."),
    429: ("throttled", "Too many requests."),
}


class ApiErrorEnvelopeMiddleware:
    """Under /api/, an error Django answered itself (an unmatched path, Django's DEBUG pages, a body
    over DATA_UPLOAD_MAX_MEMORY_SIZE, a CSRF failure, a server error) leaves in the JSON envelope too,
    never as HTML. DRF's own answers already are JSON and pass untouched."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not is_api(request)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        status = response.status_code
        code, message = ENVELOPE_CODES.get(status, ("error", "The request failed."))
        if status >= 500:
            code, message = "server_error", "Something went wrong on our side. The error has been logged."
        replaced = HttpResponse(
            json.dumps(envelope(code, message)), status=status, content_type="application/json"
        )
        if response.has_header("Allow"):
            replaced["Allow"] = response["Allow"]
        return replaced


BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class ApiBodyMiddleware:
    """Every API request body is held to the parser's rules before the view runs, also on endpoints
    that take no input and never parse it (so a junk body never reaches a view that acts): JSON,
    a JSON object, bounded in size and depth, no control characters. A view that must read the exact
    bytes (a signed webhook: `raw_body = True` on its class) checks them itself, after the signature
    (Django's DATA_UPLOAD_MAX_MEMORY_SIZE still bounds their size)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if request.method not in BODY_METHODS or not is_api(request):
            return None
        if getattr(getattr(view_func, "cls", None), "raw_body", False):
            return None
        raw = request.body
        if not raw:
            return None
        content_type = request.content_type or ""
        if content_type != "application/json" and not content_type.endswith("+json"):
            return JsonResponse(
                envelope(
                    "unsupported_media_type",
                    f"Unsupported media type {content_type or 'none'!r}: send application/json.",
                    {"Content-Type": "application/json"},
                ),
                status=415,
            )
        try:
            json_body_parse(raw, encoding=request.encoding or "utf-8")
        except ParseError as exc:
            return JsonResponse(envelope("parse_error", str(exc.detail)), status=400)
        return None


class ControlCharacterMiddleware:
    """Portal forms (every POST outside the API) and portal page queries (`?q=` searches, filters)
    with a control character in any field are refused before the view runs: a 400 naming each
    field, nothing written (PostgreSQL cannot even compare a text holding NUL). The API refuses them
    in its parser and filters (contracts.http.BoundedJSONParser); contracts.text holds the one rule."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if is_api(request):
            return None
        if request.method == "POST":
            bad = control_character_fields(request.POST)
        elif request.method in ("GET", "HEAD"):
            bad = control_character_fields(request.GET)
        else:
            return None
        if not bad:
            return None
        names = ", ".join(sorted(bad))
        return error_response(
            request,
            ApplicationError(f"Control characters are not allowed: check {names}.", fields=bad),
        )


class SecurityHeadersMiddleware:
    """Permissions-Policy on every response (settings.PERMISSIONS_POLICY)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        policy = getattr(settings, "PERMISSIONS_POLICY", "")
        if policy and not response.has_header("Permissions-Policy"):
            response["Permissions-Policy"] = policy
        return response


class RequestIdMiddleware:
    """Give every request an id before django-structlog binds it to the log context: the caller's or
    proxy's X-Request-ID when it is a sane token, a new UUID otherwise. The id is echoed in the
    response, so a caller can quote it and an operator can find every log line of that request and
    of the Celery tasks it queued."""

    VALID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = given if self.VALID.match(given) else str(uuid.uuid4())
        request.META["HTTP_X_REQUEST_ID"] = request_id
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


class AuditOriginMiddleware:
    """Binds the caller's address and user agent for the audit log (contracts.audit.origin)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = origin_bind(ip=client_ip(request), user_agent=request.headers.get("User-Agent", ""))
        try:
            return self.get_response(request)
        finally:
            origin_reset(token)


IDENTITY_POLICY_EXEMPT = (
    "/accounts/",
    "/static/",
    "/scim/",
    "/api/",
    "/healthz",
    "/invitations/",
    "/outbox/",
)
IDENTITY_POLICY_CACHE_SECONDS = 60


def _signed_in_through_sso(request: HttpRequest) -> bool:
    return any(r.get("method") == "socialaccount" for r in get_authentication_records(request))


class IdentityPolicyMiddleware:
    """The organisations' sign-in policies, on every page of a signed-in person:

    - require SSO: a session that did not come from the organisation's provider (one that existed
      before the policy was switched on) is ended; the person signs in again through SSO;
    - require a second factor of admins: an admin without TOTP or a passkey is sent to enrol one.

    The policy of a user is cached for IDENTITY_POLICY_CACHE_SECONDS, so a change takes effect
    within a minute and pages pay no query for it when warm.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or request.path.startswith(IDENTITY_POLICY_EXEMPT):
            return self.get_response(request)
        key = f"identity-policy:{user.pk}"
        policy = cache.get(key)
        if policy is None:
            policy = identity_selectors.sign_in_policy_for(user=user)
            cache.set(key, policy, IDENTITY_POLICY_CACHE_SECONDS)
        require_sso, require_mfa = policy
        if require_sso and not _signed_in_through_sso(request):
            logout(request)
            messages.error(
                request, "Your organisation requires single sign-on: continue with your e-mail address."
            )
            return redirect(f"{settings.LOGIN_URL}?next={request.path}")
        if (
            require_mfa
            and not Authenticator.objects.filter(
                user=user, type__in=[Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN]
            ).exists()
        ):
            messages.warning(
                request, "Your organisation requires admins to use a second factor: add one to continue."
            )
            return redirect("mfa_index")
        return self.get_response(request)

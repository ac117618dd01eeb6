"""REST API of the data plane (docs/data-plane.md): the pin map gateways sync, receipt-key
registration and usage ingestion (gateway keys only), and an organisation's usage report."""

from __future__ import annotations

import asyncio
import time

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpResponse, HttpResponseNotModified
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.gateway import selectors, services, wakeup
from contracts.gateway.auth import GatewayPrincipal, IsGateway
from contracts.gateway.changelog import pin_map_revision
from contracts.http import ErrorSerializer, errors
from contracts.models import Gateway
from contracts.tenancy.auth import request_organization


def _gateway(request: Request) -> Gateway:
    principal: GatewayPrincipal = request.user
    services.gateway_touch(gateway_id=principal.gateway_id)
    return Gateway(pk=principal.gateway_id, name=principal.name)


def _etag_matches(header: str | None, revision: int) -> bool:
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return f'"{revision}"' in tags or "*" in tags


def _answer(answer: selectors.PinMapAnswer) -> HttpResponse:
    return HttpResponse(
        answer.body, content_type="application/json", headers={"ETag": f'"{answer.revision}"'}
    )


def _current_revision() -> int:
    wakeup.ensure_listener()  # from the first request on: then a 304 needs no query
    known = wakeup.known_revision()
    if known is not None:
        return known
    revision = pin_map_revision()
    wakeup.observe(revision)
    return revision


def _pin_map_now(since: int | None, if_none_match: str | None) -> tuple[int, HttpResponse | None]:
    """(current revision, the answer when it needs no waiting)."""
    revision = _current_revision()
    if since is not None:
        selectors.pin_map_check_since(since=since, revision=revision)
    if _etag_matches(if_none_match, revision):
        return revision, HttpResponseNotModified(headers={"ETag": f'"{revision}"'})
    if since is None:
        return revision, _answer(selectors.pin_map_full(revision=revision))
    return revision, None


def _database(request, fn):
    """`fn` as an awaitable that may use the database.

    Under an ASGI server, Django gives every request a thread of its own for sync code, and with it a
    connection of its own: 500 waiting gateways would hold 500 connections. So under ASGI the pin
    map's reads run in the event loop's small shared executor instead (its threads keep their
    connections, at most one each, renewed by CONN_MAX_AGE), and a waiting request holds none. Under
    WSGI (runserver, the test client) the request's own thread serves, as for any view."""
    if not isinstance(request._request, ASGIRequest):
        return sync_to_async(fn)

    def pooled(*args, **kwargs):
        close_old_connections()
        return fn(*args, **kwargs)

    return sync_to_async(pooled, thread_sensitive=False)


async def _wait_for_change(request, since: int, seconds: int) -> int:
    """The revision once it moves past `since`, or the current one when `seconds` have passed."""
    deadline = time.monotonic() + seconds
    while True:
        woken = wakeup.register()
        try:
            revision = await _database(request, _current_revision)()
            while True:
                remaining = deadline - time.monotonic()
                if revision > since or remaining <= 0:
                    return revision
                try:
                    # A wake-up names the revision: no query for it (50 gateways woken at once).
                    revision = max(
                        revision, await asyncio.wait_for(woken, timeout=min(remaining, wakeup.poll_seconds()))
                    )
                except TimeoutError:
                    break  # no wake-up: read the database again
        finally:
            wakeup.unregister(woken)


class GatewayPinMapApi(APIView):
    """An async view: a long-poll waits on the event loop, holding no thread and no connection
    under an ASGI server (docs/data-plane.md, "Serving many gateways")."""

    permission_classes = [IsGateway]
    http_method_names = ["get"]
    view_is_async = True

    async def dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            if request.method != "GET":
                raise exceptions.MethodNotAllowed(request.method)
            response = await self.get(request)
        except Exception as exc:
            response = await sync_to_async(self.handle_exception)(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    @extend_schema(
        operation_id="gateway_pin_map",
        description=(
            "The pin map (full, or a delta with `since`), stamped with the change log's revision. "
            "`If-None-Match` with the current ETag answers 304. With `since` and `wait` the request is "
            "held until a change lands or `wait` seconds pass. Gateway key only."
        ),
        parameters=[
            OpenApiParameter(
                "since", OpenApiTypes.INT, description="Answer only what changed after this revision."
            ),
            OpenApiParameter(
                "wait",
                OpenApiTypes.INT,
                description="With `since`: hold up to this many seconds (at most 60).",
            ),
        ],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="The map or a delta (docs/data-plane.md)."),
            304: OpenApiResponse(description="Not modified since the ETag sent in If-None-Match."),
            410: OpenApiResponse(ErrorSerializer, description="`since` is older than the change log keeps."),
            **errors(400, 401, 403, 429),
        },
    )
    async def get(self, request: Request) -> HttpResponse:
        since, wait = selectors.parse_revision_params(request.query_params)
        if_none_match = request.headers.get("If-None-Match")

        def start() -> tuple[int, HttpResponse | None]:
            self.initial(request)  # authentication, permission, throttle: one thread hop with the rest
            _gateway(request)  # a polling gateway is a connected one (last use, at most once a minute)
            return _pin_map_now(since, if_none_match)

        revision, answer = await _database(request, start)()
        if answer is not None:
            return answer
        if wait and revision == since:
            revision = await _wait_for_change(request, since, wait)
        return _answer(await _database(request, selectors.pin_map_delta)(since=since, revision=revision))


class GatewayReceiptKeyApi(APIView):
    permission_classes = [IsGateway]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GatewayReceiptKeyInput"

        key_id = serializers.CharField(max_length=32, help_text="gw- and 16 hex digits of sha256(raw key).")
        public_key = serializers.CharField(max_length=2000, help_text="PEM, SubjectPublicKeyInfo.")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GatewayReceiptKey"

        key_id = serializers.CharField()
        gateway = serializers.CharField(source="gateway.name")
        created_at = serializers.DateTimeField()
        revoked_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="gateway_receipt_key_register",
        request=InputSerializer,
        responses={200: OutputSerializer, 201: OutputSerializer, **errors(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gateway = Gateway.objects.get(pk=_gateway(request).pk)
        registration = services.receipt_key_register(
            gateway=gateway,
            key_id=data.validated_data["key_id"],
            public_key_pem=data.validated_data["public_key"],
        )
        return Response(
            self.OutputSerializer(registration.key).data,
            status=status.HTTP_201_CREATED if registration.created else status.HTTP_200_OK,
        )


class GatewayUsageApi(APIView):
    permission_classes = [IsGateway]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GatewayUsageBatch"

        batch_id = serializers.CharField(max_length=64, help_text="Chosen by the gateway, reused on retries.")
        dropped = serializers.IntegerField(min_value=0, default=0)
        rows = serializers.ListField(
            child=inline_serializer(
                "GatewayUsageRow",
                fields={
                    "org": serializers.CharField(),
                    "alias": serializers.CharField(),
                    "snapshot": serializers.CharField(),
                    "hour": serializers.DateTimeField(help_text="Start of a UTC hour."),
                    "requests": serializers.IntegerField(min_value=0),
                },
            ),
            allow_empty=False,
            max_length=services.MAX_USAGE_ROWS,
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "GatewayUsageReceived"

        batch_id = serializers.CharField()
        rows = serializers.IntegerField()
        duplicate = serializers.BooleanField()

    @extend_schema(
        operation_id="gateway_usage_ingest",
        request=InputSerializer,
        responses={200: OutputSerializer, **errors(400, 401, 403)},
    )
    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise exceptions.ValidationError(
                {"batch_id": "The body is a JSON object with batch_id and rows."}
            )
        # The rows are validated by the service, which names the row ("rows[3].snapshot") and refuses
        # the whole batch; the serializer above only describes the body for the schema.
        result = services.usage_ingest(
            gateway=_gateway(request),
            batch_id=body.get("batch_id"),
            rows=body.get("rows"),
            dropped=body.get("dropped", 0),
        )
        return Response(self.OutputSerializer(result).data)


class UsageReportApi(APIView):
    """The organisation's usage as its gateways reported it: deprecated snapshots still called first."""

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "UsageReport"

        class DeprecatedSerializer(serializers.Serializer):
            class Meta:
                ref_name = "UsageDeprecatedSnapshot"

            snapshot = serializers.CharField(source="snapshot.name")
            status = serializers.CharField()
            aliases = serializers.ListField(child=serializers.CharField())
            calls_7d = serializers.IntegerField()
            calls_30d = serializers.IntegerField()
            last_seen = serializers.DateTimeField(
                help_text="Start of the last hour it served this organisation."
            )
            retires_at = serializers.DateTimeField(source="snapshot.retires_at", allow_null=True)
            days_to_retirement = serializers.IntegerField(allow_null=True)
            replacement = serializers.CharField(
                source="snapshot.replacement.name", allow_null=True, default=None
            )
            migration = serializers.IntegerField(source="migration.pk", allow_null=True, default=None)
            migration_to = serializers.CharField(
                source="migration.to_snapshot.name", allow_null=True, default=None
            )

        class SeriesSerializer(serializers.Serializer):
            class Meta:
                ref_name = "UsageSeries"

            alias = serializers.CharField()
            snapshot = serializers.CharField()
            total = serializers.IntegerField()
            daily = serializers.ListField(child=serializers.IntegerField())

        days = serializers.ListField(child=serializers.DateField())
        deprecated = DeprecatedSerializer(many=True)
        series = SeriesSerializer(many=True)

    @extend_schema(operation_id="usage_report", responses={200: OutputSerializer, **errors(401, 403, 404)})
    def get(self, request: Request) -> Response:
        org = request_organization(request)
        days, series = selectors.usage_series(org=org)
        return Response(
            self.OutputSerializer(
                {"days": days, "deprecated": selectors.usage_deprecated(org=org), "series": series}
            ).data
        )

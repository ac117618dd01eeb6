"""REST API of notifications: the notice log, webhook endpoints and test events, the calendar feed."""

from __future__ import annotations

import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import renderers, serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.errors import ApplicationError
from contracts.http import CONDITIONAL, NOT_MODIFIED, errors
from contracts.pagination import LINK_HEADER, PageSerializer, page_params, paged_response
from contracts.tenancy.auth import request_organization, request_role
from contracts.tenancy.roles import Permission, permission_require
from notifications import calendar, selectors, services
from notifications.models import Channel, Milestone, NoticeStatus, WebhookEvent


def _require_admin(request: Request) -> None:
    permission_require(request_role(request), Permission.MANAGE_SETTINGS)


class NoticeListApi(APIView):
    class FilterSerializer(PageSerializer):
        class Meta:
            ref_name = "NoticeFilter"

        status = serializers.ChoiceField(choices=NoticeStatus.choices, required=False)
        milestone = serializers.ChoiceField(choices=Milestone.choices, required=False)
        channel = serializers.ChoiceField(choices=Channel.choices, required=False)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "Notice"

        id = serializers.IntegerField()
        milestone = serializers.ChoiceField(choices=Milestone.choices)
        channel = serializers.ChoiceField(choices=Channel.choices)
        status = serializers.ChoiceField(choices=NoticeStatus.choices)
        legal = serializers.BooleanField()
        snapshot = serializers.CharField(source="snapshot.name", allow_null=True, default=None)
        migration = serializers.IntegerField(source="migration_id", allow_null=True)
        subject = serializers.CharField()
        due_at = serializers.DateTimeField()
        sent_at = serializers.DateTimeField(allow_null=True)
        attempts = serializers.IntegerField()
        acknowledged_at = serializers.DateTimeField(allow_null=True)
        acknowledged_by = serializers.CharField(source="acknowledged_by_email")
        escalated_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="notices_list",
        parameters=[FilterSerializer, LINK_HEADER],
        responses={200: OutputSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request) -> Response:
        params = page_params(self.FilterSerializer, request)
        org = request_organization(request)
        filters = {k: params.get(k) for k in ("status", "milestone", "channel")}
        return paged_response(
            request,
            selectors.notice_list(org=org, **filters),
            name="notices",
            org_id=org.pk,
            params=params,
            order=("-due_at", "-id"),
            serializer_class=self.OutputSerializer,
        )


class WebhookOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "WebhookEndpoint"

    id = serializers.IntegerField()
    url = serializers.URLField()
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))
    description = serializers.CharField()
    created_at = serializers.DateTimeField()
    secret_rotated_at = serializers.DateTimeField(allow_null=True)


class WebhookListApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WebhookEndpointInput"

        url = serializers.CharField(max_length=500)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=WebhookEvent.choices), min_length=1, max_length=10
        )
        description = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    class CreatedSerializer(WebhookOutputSerializer):
        class Meta:
            ref_name = "WebhookEndpointCreated"

        secret = serializers.CharField(help_text="The signing secret (whsec_…). Shown only in this response.")

    @extend_schema(
        operation_id="webhooks_list",
        parameters=[PageSerializer, LINK_HEADER],
        responses={200: WebhookOutputSerializer(many=True), **errors(400, 401, 404)},
    )
    def get(self, request: Request) -> Response:
        params = page_params(PageSerializer, request)
        org = request_organization(request)
        return paged_response(
            request,
            selectors.webhook_endpoint_list(org=org),
            name="webhooks",
            org_id=org.pk,
            params=params,
            order=("created_at", "id"),
            serializer_class=WebhookOutputSerializer,
        )

    @extend_schema(
        operation_id="webhooks_create",
        request=InputSerializer,
        responses={
            201: CreatedSerializer,
            **errors(400, 401, 403, 404),
            409: OpenApiResponse(description="Too many endpoints for this organisation."),
        },
    )
    def post(self, request: Request) -> Response:
        _require_admin(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = services.webhook_endpoint_create(
            org=request_organization(request), acting_user=request.user, **data.validated_data
        )
        return Response(self.CreatedSerializer(endpoint).data, status=201)


class WebhookTestApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "WebhookTestDelivery"

        delivery = serializers.IntegerField(source="pk")
        msg_id = serializers.CharField()
        event_type = serializers.CharField()
        status = serializers.CharField()

    @extend_schema(
        operation_id="webhooks_test",
        request=None,
        responses={202: OutputSerializer, **errors(401, 403, 404)},
    )
    def post(self, request: Request, webhook_id: int) -> Response:
        org = request_organization(request)
        endpoint = selectors.webhook_endpoint_get(org=org, webhook_id=webhook_id)
        _require_admin(request)
        delivery = services.webhook_send_test(endpoint=endpoint)
        delivery.refresh_from_db()
        return Response(self.OutputSerializer(delivery).data, status=202)


class CalendarRenderer(renderers.BaseRenderer):
    media_type = "text/calendar"
    format = "ics"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | str):
            return data
        return json.dumps(data).encode()


class CalendarFeedApi(APIView):
    """The organisation's calendar (iCalendar); the token in the URL is the only credential."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    renderer_classes = [renderers.JSONRenderer, CalendarRenderer]

    @extend_schema(
        operation_id="calendar_feed",
        auth=[],
        parameters=[
            OpenApiParameter("token", OpenApiTypes.STR, OpenApiParameter.QUERY, required=True),
            *CONDITIONAL,
        ],
        responses={
            (200, "text/calendar"): OpenApiResponse(
                OpenApiTypes.STR, description="An iCalendar (RFC 5545) feed."
            ),
            **NOT_MODIFIED,
            **errors(400, 404),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        token = request.query_params.get("token", "")
        if not token:
            raise ApplicationError("The calendar token is required.", fields={"token": "required"})
        org = selectors.calendar_organization(token=token)
        body = calendar.calendar_feed(org=org)
        response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{org.slug}-contract-dates.ics"'
        response["Cache-Control"] = "private, max-age=300"
        return response

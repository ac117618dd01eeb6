"""REST API of billing: the Stripe webhook (the signature is the authentication) and Checkout."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.billing import services as billing
from contracts.errors import Forbidden
from contracts.http import ERRORS, ErrorSerializer, errors
from contracts.tenancy.auth import request_organization, request_role
from contracts.tenancy.roles import Permission, role_may


class StripeWebhookApi(APIView):
    """Stripe's event deliveries. No session or key: the Stripe-Signature header authenticates."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    raw_body = True  # the exact signed bytes (portal.middleware.ApiBodyMiddleware lets them through)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "StripeWebhookReceipt"

        received = serializers.BooleanField()
        duplicate = serializers.BooleanField(
            help_text="True when this event id was already stored (a replay)."
        )
        event_id = serializers.CharField()

    @extend_schema(
        operation_id="stripe_webhook",
        auth=[],
        request={"application/json": OpenApiTypes.OBJECT},
        parameters=[
            OpenApiParameter(
                "Stripe-Signature",
                OpenApiTypes.STR,
                location=OpenApiParameter.HEADER,
                required=True,
                description="t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>' with the endpoint secret>.",
            )
        ],
        responses={
            200: OutputSerializer,
            400: OpenApiResponse(
                ErrorSerializer, description="Missing or wrong signature, stale timestamp, or not an event."
            ),
            429: ERRORS[429],
        },
    )
    def post(self, request: Request) -> Response:
        payload = request._request.body  # the exact bytes Stripe signed, never the parsed JSON
        event, created = billing.stripe_event_receive(
            payload=payload, signature=request.headers.get("Stripe-Signature")
        )
        return Response({"received": True, "duplicate": not created, "event_id": event.event_id})


class ExtendedSupportCheckoutApi(APIView):
    """Start buying extended support of a deprecated snapshot a pin is on (organisation admins)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ExtendedSupportCheckoutInput"

        snapshot = serializers.SlugField(
            max_length=100, help_text="The deprecated snapshot, e.g. chat-2025-06-01."
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ExtendedSupportCheckout"

        checkout_url = serializers.URLField()
        session_id = serializers.CharField()

    @extend_schema(
        operation_id="extended_support_checkout",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **errors(400, 401, 403, 404, 429),
            409: OpenApiResponse(
                ErrorSerializer,
                description="Not offered, not deprecated, no pin on it, already covered, or billing not configured.",
            ),
            502: OpenApiResponse(ErrorSerializer, description="Stripe could not be reached or refused."),
        },
    )
    def post(self, request: Request) -> Response:
        org = request_organization(request)
        if not role_may(request_role(request), Permission.BUY_EXTENDED_SUPPORT):
            raise Forbidden("Only an organisation admin can buy extended support.", fields={"role": "admin"})
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        billing_url = settings.SITE_URL + reverse("portal:billing", kwargs={"org": org.slug})
        checkout = billing.extended_support_checkout_create(
            org=org,
            snapshot_name=data.validated_data["snapshot"],
            acting_user=request.user if getattr(request.user, "pk", None) else None,
            success_url=billing_url + "?checkout=success",
            cancel_url=billing_url + "?checkout=cancelled",
        )
        return Response(
            self.OutputSerializer({"checkout_url": checkout.url, "session_id": checkout.session_id}).data
        )

"""REST API of migrations and the consent ledger. One APIView per operation.

Deciding needs the admin role: an organisation API key acts as admin of its organisation, a session
user acts with their membership role (member and legal get 403).
"""

from __future__ import annotations

import datetime as dt

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.consent import selectors, services
from contracts.http import CONDITIONAL, ERRORS, NOT_MODIFIED, ErrorSerializer, InstantField, errors
from contracts.ledger.verify import ledger_verify
from contracts.models import ConsentRecord, LedgerAction, Migration, MigrationState
from contracts.pagination import LINK_HEADER, PageSerializer, page_params, paged_response
from contracts.tenancy.auth import KeyPrincipal, client_ip, request_organization, request_role
from contracts.tenancy.roles import Permission, role_may

CONFLICT = {
    409: OpenApiResponse(ErrorSerializer, description="Already decided, expired, or outside the window.")
}
ERRORS.setdefault(409, CONFLICT[409])


def request_decider(request: Request) -> services.Decider:
    """Who is deciding, as the ledger records it (API keys are named by their id)."""
    user = request.user
    ip = client_ip(request)
    user_agent = request.headers.get("User-Agent", "")
    role = request_role(request)
    if isinstance(user, KeyPrincipal):
        return services.Decider(
            user=None, email=f"api-key:{user.key_id}", ip=ip, user_agent=user_agent, role=role
        )
    return services.Decider(user=user, ip=ip, user_agent=user_agent, role=role)


class MigrationOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "Migration"

    id = serializers.IntegerField()
    alias = serializers.CharField(source="pin.alias.name")
    from_snapshot = serializers.CharField(source="from_snapshot.name")
    to_snapshot = serializers.CharField(source="to_snapshot.name")
    state = serializers.ChoiceField(choices=MigrationState.choices)
    origin = serializers.CharField()
    note = serializers.CharField()
    proposed_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField(allow_null=True)
    deferred_until = serializers.DateTimeField(allow_null=True)
    scheduled_for = serializers.DateTimeField(allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    applied_at = serializers.DateTimeField(allow_null=True)
    rolled_back_at = serializers.DateTimeField(allow_null=True)
    diff_url = serializers.SerializerMethodField()

    def get_diff_url(self, migration: Migration) -> str:
        return selectors.diff_url(org=migration.organization, migration=migration)


class ConsentRecordOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "ConsentRecord"

    seq = serializers.IntegerField()
    action = serializers.ChoiceField(choices=LedgerAction.choices)
    actor_email = serializers.CharField()
    migration_id = serializers.IntegerField(allow_null=True)
    from_snapshot = serializers.CharField()
    to_snapshot = serializers.CharField()
    terms_version = serializers.CharField()
    terms_sha256 = serializers.CharField()
    diff_sha256 = serializers.CharField()
    details = serializers.JSONField()
    ip = serializers.CharField(
        allow_null=True, help_text="null unless the caller may export the ledger (admin, legal, keys)."
    )
    user_agent = serializers.CharField(
        allow_null=True, help_text="null unless the caller may export the ledger (admin, legal, keys)."
    )
    created_at = serializers.DateTimeField()
    prev_hash = serializers.CharField()
    hash = serializers.CharField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if not self.context.get("show_client", True):
            # IP address and User-Agent are personal data that only the roles that may export the
            # ledger see (Permission.EXPORT_LEDGER); the record's hash still covers them.
            data["ip"] = data["user_agent"] = None
        return data


DecisionSerializer = inline_serializer(
    "MigrationDecision",
    fields={"migration": MigrationOutputSerializer(), "record": ConsentRecordOutputSerializer()},
)


def decision_response(record: ConsentRecord, org) -> Response:
    migration = selectors.migration_get(org=org, migration_id=record.migration_id)
    return Response(
        {
            "migration": MigrationOutputSerializer(migration).data,
            "record": ConsentRecordOutputSerializer(record).data,
        }
    )


class MigrationListApi(APIView):
    class FilterSerializer(PageSerializer):
        class Meta:
            ref_name = "MigrationFilter"

        state = serializers.ChoiceField(choices=MigrationState.choices, required=False)

    @extend_schema(
        operation_id="migrations_list",
        parameters=[FilterSerializer, *CONDITIONAL, LINK_HEADER],
        responses={200: MigrationOutputSerializer(many=True), **NOT_MODIFIED, **errors(400, 401, 404)},
    )
    def get(self, request: Request) -> Response:
        params = page_params(self.FilterSerializer, request)
        org = request_organization(request)
        return paged_response(
            request,
            selectors.migration_list(org=org, state=params.get("state")),
            name="migrations",
            org_id=org.pk,
            params=params,
            order=("-proposed_at", "-id"),
            serializer_class=MigrationOutputSerializer,
        )


class MigrationDetailApi(APIView):
    @extend_schema(
        operation_id="migrations_retrieve", responses={200: MigrationOutputSerializer, **errors(401, 404)}
    )
    def get(self, request: Request, migration_id: int) -> Response:
        org = request_organization(request)
        migration = selectors.migration_get(org=org, migration_id=migration_id)
        return Response(MigrationOutputSerializer(migration).data)


class MigrationConsentApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MigrationConsentInput"

        at = InstantField(
            required=False,
            allow_null=True,
            help_text="Schedule the move for this instant (before the deadline).",
        )
        terms_sha256 = serializers.RegexField(
            r"^[0-9a-f]{64}$",
            required=False,
            help_text="The terms sha256 the decider was shown (409 if changed).",
        )

    @extend_schema(
        operation_id="migrations_consent",
        request=InputSerializer,
        responses={200: DecisionSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, migration_id: int) -> Response:
        org = request_organization(request)
        migration = selectors.migration_get(org=org, migration_id=migration_id)
        data = self.InputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        record = services.migration_consent(
            migration=migration,
            decider=request_decider(request),
            scheduled_for=data.validated_data.get("at"),
            expected_terms_sha256=data.validated_data.get("terms_sha256"),
        )
        return decision_response(record, org)


class MigrationDeferApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MigrationDeferInput"

        until = serializers.DateField(help_text="Defer until this date (00:00 UTC), within the terms' limit.")
        terms_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", required=False)

        def validate_until(self, value: dt.date) -> dt.date:
            if not 2000 <= value.year <= 2999:
                raise serializers.ValidationError("Must be between the years 2000 and 2999.")
            return value

    @extend_schema(
        operation_id="migrations_defer",
        request=InputSerializer,
        responses={200: DecisionSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, migration_id: int) -> Response:
        org = request_organization(request)
        migration = selectors.migration_get(org=org, migration_id=migration_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        until = dt.datetime.combine(data.validated_data["until"], dt.time(), tzinfo=dt.UTC)
        record = services.migration_defer(
            migration=migration,
            decider=request_decider(request),
            until=until,
            expected_terms_sha256=data.validated_data.get("terms_sha256"),
        )
        return decision_response(record, org)


class _TermsShownSerializer(serializers.Serializer):
    terms_sha256 = serializers.RegexField(r"^[0-9a-f]{64}$", required=False)


class MigrationDeclineApi(APIView):
    class InputSerializer(_TermsShownSerializer):
        class Meta:
            ref_name = "MigrationDeclineInput"

    @extend_schema(
        operation_id="migrations_decline",
        request=InputSerializer,
        responses={200: DecisionSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, migration_id: int) -> Response:
        org = request_organization(request)
        migration = selectors.migration_get(org=org, migration_id=migration_id)
        data = self.InputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        record = services.migration_decline(
            migration=migration,
            decider=request_decider(request),
            expected_terms_sha256=data.validated_data.get("terms_sha256"),
        )
        return decision_response(record, org)


class MigrationRollbackApi(APIView):
    class InputSerializer(_TermsShownSerializer):
        class Meta:
            ref_name = "MigrationRollbackInput"

    @extend_schema(
        operation_id="migrations_rollback",
        request=InputSerializer,
        responses={200: DecisionSerializer, **errors(400, 401, 403, 404, 409)},
    )
    def post(self, request: Request, migration_id: int) -> Response:
        org = request_organization(request)
        migration = selectors.migration_get(org=org, migration_id=migration_id)
        data = self.InputSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        record = services.migration_rollback(
            migration=migration,
            decider=request_decider(request),
            expected_terms_sha256=data.validated_data.get("terms_sha256"),
        )
        return decision_response(record, org)


class ConsentListApi(APIView):
    class FilterSerializer(PageSerializer):
        class Meta:
            ref_name = "ConsentFilter"

        action = serializers.ChoiceField(choices=LedgerAction.choices, required=False)
        # "from" is a Python keyword: declared below under its public name.
        to = InstantField(required=False, help_text="Records created at or before this instant.")
        offset = serializers.IntegerField(
            required=False,
            min_value=0,
            max_value=10**9,
            default=0,
            help_text="Deprecated (use `cursor`): skip this many records before the first page.",
        )

    FilterSerializer._declared_fields["from"] = InstantField(
        required=False, help_text="Records created at or after this instant."
    )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ConsentPage"

        count = serializers.IntegerField(help_text="Records matching the filters, on every page.")
        next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
        results = ConsentRecordOutputSerializer(many=True)

    @extend_schema(
        operation_id="consents_list",
        parameters=[FilterSerializer, LINK_HEADER],
        responses={200: OutputSerializer, **errors(400, 401, 404)},
    )
    def get(self, request: Request) -> Response:
        params = page_params(self.FilterSerializer, request)
        org = request_organization(request)
        qs = selectors.consent_list(
            org=org, action=params.get("action"), since=params.get("from"), until=params.get("to")
        )
        show_client = role_may(request_role(request), Permission.EXPORT_LEDGER)
        count = qs.count()
        page = qs
        offset = params.pop("offset", 0)
        if offset and not params.get("cursor"):
            # The deprecated offset becomes a keyset bound: the seq of the record just before.
            before = list(qs.values_list("seq", flat=True)[offset - 1 : offset])
            page = qs.filter(seq__lt=before[0]) if before else qs.none()
        return paged_response(
            request,
            page,
            name="consents",
            org_id=org.pk,
            params=params,
            order=("-seq",),
            serializer_class=ConsentRecordOutputSerializer,
            context={"show_client": show_client},
            body=lambda results, next_url: {"count": count, "next": next_url, "results": results},
        )


class ConsentVerifyApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "LedgerVerification"

        organization = serializers.CharField()
        intact = serializers.BooleanField()
        records = serializers.IntegerField()
        head_seq = serializers.IntegerField()
        head_hash = serializers.CharField()
        broken_seq = serializers.IntegerField(allow_null=True)
        reason = serializers.CharField()
        checkpoints = serializers.IntegerField(help_text="Signed checkpoints held against the records.")
        contradicted_checkpoint = serializers.IntegerField(
            allow_null=True, help_text="Seq of the first signed checkpoint the database contradicts."
        )
        problems = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        operation_id="consents_verify",
        responses={200: OutputSerializer, **errors(401, 404)},
        description=(
            "Recompute the organisation's hash chain and hold it against the vendor's signatures (the "
            "chain head and every daily checkpoint): intact with its head, or the first broken record "
            "and the first checkpoint the database contradicts."
        ),
    )
    def get(self, request: Request) -> Response:
        org = request_organization(request)
        result = ledger_verify(org=org)
        return Response({"organization": org.slug, **result.as_dict()})

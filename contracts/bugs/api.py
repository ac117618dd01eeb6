"""REST API of bug reports and output receipts. One APIView per operation; views stay thin."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.bugs import receipts, selectors, services
from contracts.bugs.selectors import BugReportView
from contracts.catalog.selectors import snapshot_summary
from contracts.errors import ApplicationError, Forbidden
from contracts.http import CONDITIONAL, NOT_MODIFIED, errors
from contracts.instants import parse_instant
from contracts.models import BugStatus, Snapshot
from contracts.pagination import LINK_HEADER, PageSerializer, page_params, paged_response
from contracts.tenancy.auth import request_organization, request_role
from contracts.tenancy.roles import Permission, role_may


class ReceiptSerializer(serializers.Serializer):
    class Meta:
        ref_name = "OutputReceipt"

    v = serializers.IntegerField(help_text="Receipt format version (1).")
    org = serializers.CharField(help_text="Slug of the organisation that was served.")
    alias = serializers.CharField()
    snapshot = serializers.CharField(help_text="The snapshot that produced the output.")
    response_id = serializers.CharField()
    time = serializers.CharField(help_text="ISO 8601 instant in UTC.")
    key_id = serializers.CharField(help_text="Id of the Ed25519 key that signed it.")
    signature = serializers.CharField(
        help_text="Base64 Ed25519 signature over the canonical JSON of the rest."
    )


class BugSnapshotSerializer(serializers.Serializer):
    class Meta:
        ref_name = "BugReportSnapshot"

    id = serializers.CharField()
    family = serializers.CharField()
    digest = serializers.CharField()
    status = serializers.CharField()
    released_at = serializers.DateTimeField()
    deprecated_at = serializers.DateTimeField(allow_null=True)
    retires_at = serializers.DateTimeField(allow_null=True)
    retention_until = serializers.DateTimeField(allow_null=True)
    replacement = serializers.CharField(allow_null=True)


class BugReportOutputSerializer(serializers.Serializer):
    class Meta:
        ref_name = "BugReport"

    class ReproducibilitySerializer(serializers.Serializer):
        class Meta:
            ref_name = "BugReportReproducibility"

        code = serializers.ChoiceField(
            choices=[selectors.REPRODUCIBLE_NOW, selectors.REPRODUCIBLE_ON_REQUEST, selectors.GONE]
        )
        label = serializers.CharField()
        explanation = serializers.CharField()

    class PolicySerializer(serializers.Serializer):
        class Meta:
            ref_name = "BugReportPolicy"

        terms_version = serializers.CharField(allow_null=True)
        text = serializers.CharField(
            allow_blank=True, help_text="The accepted terms' retired-artifact policy, word for word."
        )

    class EventSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BugReportEvent"

        status = serializers.ChoiceField(choices=BugStatus.choices)
        label = serializers.CharField()
        note = serializers.CharField(allow_blank=True)
        at = serializers.DateTimeField()

    id = serializers.IntegerField()
    organization = serializers.CharField()
    alias = serializers.CharField()
    observed_at = serializers.DateTimeField()
    response_id = serializers.CharField(allow_blank=True)
    receipt = ReceiptSerializer(allow_null=True)
    resolved_by = serializers.ChoiceField(choices=["history", "receipt"])
    prompt = serializers.CharField(allow_blank=True)
    output = serializers.CharField(allow_blank=True)
    expected = serializers.CharField(allow_blank=True)
    snapshot = BugSnapshotSerializer()
    reproducibility = ReproducibilitySerializer()
    owning_team = serializers.CharField()
    status = serializers.ChoiceField(choices=BugStatus.choices)
    status_label = serializers.CharField()
    fixed_in = serializers.CharField(allow_null=True)
    policy = PolicySerializer()
    history = EventSerializer(many=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    url = serializers.CharField(help_text="The report's page in the portal.")


def bug_report_payload(view: BugReportView) -> dict[str, Any]:
    report = view.report
    summary = snapshot_summary(report.snapshot)
    return {
        "id": report.pk,
        "organization": report.organization.slug,
        "alias": report.alias.name,
        "observed_at": report.observed_at,
        "response_id": report.response_id,
        "receipt": report.receipt,
        "resolved_by": report.resolved_by,
        "prompt": report.prompt,
        "output": report.output,
        "expected": report.expected,
        "snapshot": {key: summary[key] for key in BugSnapshotSerializer().fields},
        "reproducibility": {
            "code": view.reproducibility,
            "label": view.reproducibility_label,
            "explanation": view.reproducibility_explanation,
        },
        "owning_team": report.owning_team,
        "status": report.status,
        "status_label": report.get_status_display(),
        "fixed_in": report.fixed_in.name if report.fixed_in_id else None,
        "policy": {"terms_version": view.terms.version if view.terms else None, "text": view.policy_text},
        "history": [
            {"status": e.status, "label": e.get_status_display(), "note": e.note, "at": e.created_at}
            for e in view.events
        ],
        "created_at": report.created_at,
        "updated_at": report.updated_at,
        "url": reverse("portal:bug_detail", kwargs={"org": report.organization.slug, "report_id": report.pk}),
    }


class BugReportListApi(APIView):
    # GET: the organisation's reports, newest first, in cursor pages (every role reads, like a
    # report's own page); POST: file one (admin and member).

    class FilterSerializer(PageSerializer):
        """The filters of the bug reports page, and the report's alias and snapshot by name."""

        class Meta:
            ref_name = "BugReportFilter"

        status = serializers.ChoiceField(choices=BugStatus.choices, required=False)
        alias = serializers.SlugField(required=False, max_length=100, help_text="The alias, by name.")
        snapshot = serializers.SlugField(
            required=False, max_length=100, help_text="The snapshot the report landed on, by name."
        )
        q = serializers.CharField(
            required=False, max_length=100, help_text="In alias name, snapshot name or response id."
        )

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "BugReportFileInput"

        alias = serializers.SlugField(
            max_length=100, required=False, allow_blank=True, help_text="Required unless a receipt is given."
        )
        observed_at = serializers.CharField(
            max_length=64,
            required=False,
            allow_blank=True,
            help_text="When the output was produced, ISO 8601 with a time zone. Required unless a receipt is given.",
        )
        response_id = serializers.CharField(max_length=200, required=False, allow_blank=True)
        reporter_email = serializers.EmailField(
            max_length=254,
            required=False,
            allow_blank=True,
            help_text="Who gets the status e-mails; defaults to the signed-in user. Give it when filing with a key.",
        )
        receipt = serializers.JSONField(
            required=False,
            allow_null=True,
            help_text="The output receipt returned with the response, verbatim.",
        )
        prompt = serializers.CharField(max_length=services.MAX_TEXT_CHARS, required=False, allow_blank=True)
        output = serializers.CharField(max_length=services.MAX_TEXT_CHARS, required=False, allow_blank=True)
        expected = serializers.CharField(max_length=services.MAX_TEXT_CHARS, required=False, allow_blank=True)

    @extend_schema(
        operation_id="bug_reports_list",
        parameters=[FilterSerializer, *CONDITIONAL, LINK_HEADER],
        responses={200: BugReportOutputSerializer(many=True), **NOT_MODIFIED, **errors(400, 401, 404)},
    )
    def get(self, request: Request) -> Response:
        params = page_params(self.FilterSerializer, request)
        org = request_organization(request)
        filters = {k: params.get(k) for k in ("status", "alias", "snapshot", "q")}
        return paged_response(
            request,
            selectors.bug_report_list(org=org, **filters),
            name="bug-reports",
            org_id=org.pk,
            params=params,
            order=("-created_at", "-id"),
            serializer_class=BugReportOutputSerializer,
            prepare=lambda reports: [
                bug_report_payload(view) for view in selectors.bug_report_views(reports=reports)
            ],
        )

    @extend_schema(
        operation_id="bug_reports_create",
        request=InputSerializer,
        responses={201: BugReportOutputSerializer, **errors(400, 401, 403, 404)},
    )
    def post(self, request: Request) -> Response:
        org = request_organization(request)
        if not role_may(request_role(request), Permission.FILE_BUG_REPORTS):
            raise Forbidden("Filing a bug report needs the admin or member role.")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        observed_raw = values.pop("observed_at", "") or ""
        observed_at = parse_instant(observed_raw, field="observed_at") if observed_raw.strip() else None
        report = services.bug_report_file(
            org=org,
            reporter=request.user if getattr(request.user, "pk", None) else None,
            observed_at=observed_at,
            **values,
        )
        view = selectors.bug_report_view(org=org, report_id=report.pk)
        return Response(
            BugReportOutputSerializer(bug_report_payload(view)).data, status=status.HTTP_201_CREATED
        )


class BugReportDetailApi(APIView):
    @extend_schema(
        operation_id="bug_reports_retrieve", responses={200: BugReportOutputSerializer, **errors(401, 404)}
    )
    def get(self, request: Request, report_id: int) -> Response:
        org = request_organization(request)
        view = selectors.bug_report_view(org=org, report_id=report_id)
        return Response(BugReportOutputSerializer(bug_report_payload(view)).data)


class ReceiptVerifyApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReceiptVerifyInput"

        receipt = serializers.JSONField(help_text="The output receipt as returned with the response.")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReceiptVerification"

        valid = serializers.BooleanField()
        key_id = serializers.CharField()
        signer = serializers.CharField(help_text="`portal`, or `gateway:<name>` for a serving gateway's key.")
        key_revoked_at = serializers.DateTimeField(
            allow_null=True,
            help_text="When the signing key was revoked (it still vouches for receipts signed before).",
        )
        organization = serializers.CharField()
        alias = serializers.CharField()
        response_id = serializers.CharField()
        time = serializers.DateTimeField()
        snapshot = BugSnapshotSerializer(help_text="The snapshot that produced the output, as it stands now.")

    @extend_schema(
        operation_id="receipts_verify",
        request=InputSerializer,
        responses={200: OutputSerializer, **errors(400, 401, 404)},
    )
    def post(self, request: Request) -> Response:
        org = request_organization(request)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payload = receipts.receipt_verify(data.validated_data["receipt"])
        if payload["org"] != org.slug:
            raise ApplicationError(
                "This receipt was issued to another organisation.",
                fields={"receipt": "Issued to another organisation."},
            )
        snapshot = (
            Snapshot.objects.select_related("family", "replacement").filter(name=payload["snapshot"]).first()
        )
        if snapshot is None:
            raise ApplicationError(
                f"The receipt names snapshot {payload['snapshot']!r}, which does not exist.",
                fields={"receipt": "Unknown snapshot."},
            )
        summary = snapshot_summary(snapshot)
        return Response(
            self.OutputSerializer(
                {
                    "valid": True,
                    "key_id": payload["key_id"],
                    "signer": payload["signer"],
                    "key_revoked_at": payload["key_revoked_at"],
                    "organization": payload["org"],
                    "alias": payload["alias"],
                    "response_id": payload["response_id"],
                    "time": payload["time"],
                    "snapshot": {key: summary[key] for key in BugSnapshotSerializer().fields},
                }
            ).data
        )

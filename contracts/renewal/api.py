"""REST API of renewal and audit.

Customers (organisation key or session; admin role to ask): `POST eval-runs/` queues a refresh of a
procurement suite, `GET eval-runs/<id>/` follows it. Eval runners (runner key, vendor side):
`GET eval-runs/claim/` leases the oldest queued run (204 when none), `POST eval-runs/<id>/progress/`
reports progress and extends the lease, `POST eval-runs/<id>/results/` posts the scores in the eval
upload format. Audit packs: `POST audit-packs/` (admin or legal) queues one, `GET audit-packs/<id>/`
gives its progress and `download_url`, `GET audit-packs/<id>/download/` the zip.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contracts.errors import Conflict
from contracts.http import ErrorSerializer, errors
from contracts.models import AuditPack, EvalResult, EvalRun, ExportStatus, ProcurementBaseline
from contracts.renewal import auditpack, selectors, services
from contracts.renewal.auth import IsEvalRunner, RunnerKeyAuthentication, request_runner
from contracts.tenancy.auth import ApiKeyAuthentication, request_organization, request_role
from contracts.tenancy.roles import Permission, permission_require

RUNNER_AUTH = [RunnerKeyAuthentication, ApiKeyAuthentication, SessionAuthentication]
CONFLICT = OpenApiResponse(
    ErrorSerializer, description="The lease is stale or expired, or the file is not ready."
)


def _actor(request: Request):
    return request.user if getattr(request.user, "pk", None) else None


def run_payload(run: EvalRun) -> dict:
    baseline, rows = selectors.run_deltas(run) if run.scores else (None, [])
    return {
        "id": run.pk,
        "organization": run.organization.slug,
        "suite": run.suite.slug,
        "snapshot": run.snapshot.name,
        "alias": run.alias_name,
        "migration": run.migration_id,
        "state": run.state,
        "progress": run.progress,
        "attempts": run.attempts,
        "requested_at": run.requested_at,
        "claimed_at": run.claimed_at,
        "finished_at": run.finished_at,
        "error": run.error,
        "scores": run.scores,
        "baseline_snapshot": baseline.result.snapshot.name if baseline else None,
        "deltas": [
            {k: m[k] for k in ("metric", "before", "after", "delta", "tolerance", "regression")} for m in rows
        ],
        "status_url": reverse("api:eval-run-detail", kwargs={"run_id": run.pk}),
    }


class DeltaSerializer(serializers.Serializer):
    class Meta:
        ref_name = "EvalRunDelta"

    metric = serializers.CharField()
    before = serializers.FloatField(allow_null=True)
    after = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True)
    tolerance = serializers.FloatField()
    regression = serializers.BooleanField()


class EvalRunSerializer(serializers.Serializer):
    class Meta:
        ref_name = "EvalRun"

    id = serializers.IntegerField()
    organization = serializers.CharField()
    suite = serializers.CharField()
    snapshot = serializers.CharField()
    alias = serializers.CharField(help_text="The alias whose served snapshot was asked for, or empty.")
    migration = serializers.IntegerField(allow_null=True)
    state = serializers.ChoiceField(choices=["queued", "claimed", "done", "failed"])
    progress = serializers.IntegerField(min_value=0, max_value=100)
    attempts = serializers.IntegerField()
    requested_at = serializers.DateTimeField()
    claimed_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    scores = serializers.JSONField(allow_null=True)
    baseline_snapshot = serializers.CharField(allow_null=True)
    deltas = DeltaSerializer(many=True, help_text="Against the procurement baseline, regressions first.")
    status_url = serializers.CharField()


class EvalRunRequestApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "EvalRunRequest"

        suite = serializers.CharField(
            max_length=100, help_text="A suite you have a procurement baseline for."
        )
        alias = serializers.CharField(
            max_length=100, required=False, allow_blank=True, help_text="Refresh on the snapshot served now."
        )
        snapshot = serializers.CharField(
            max_length=100, required=False, allow_blank=True, help_text="Or: a snapshot served or proposed."
        )
        migration = serializers.IntegerField(
            min_value=1,
            max_value=2**53,
            required=False,
            allow_null=True,
            help_text="Or: a migration's target.",
        )

    @extend_schema(
        operation_id="eval_runs_request",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(EvalRunSerializer, description="Queued."),
            200: OpenApiResponse(EvalRunSerializer, description="The same refresh is already open."),
            **errors(400, 401, 403, 404, 429),
        },
    )
    def post(self, request: Request) -> Response:
        org = request_organization(request)
        permission_require(request_role(request), Permission.REQUEST_EVAL_REFRESH)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run, created = services.eval_run_request(
            org=org,
            suite=values["suite"],
            alias=values.get("alias") or "",
            snapshot=values.get("snapshot") or "",
            migration_id=values.get("migration"),
            acting_user=_actor(request),
        )
        run = selectors.eval_run_get(org=org, run_id=run.pk)
        return Response(EvalRunSerializer(run_payload(run)).data, status=201 if created else 200)


class EvalRunDetailApi(APIView):
    @extend_schema(operation_id="eval_runs_get", responses={200: EvalRunSerializer, **errors(401, 404, 429)})
    def get(self, request: Request, run_id: int) -> Response:
        run = selectors.eval_run_get(org=request_organization(request), run_id=run_id)
        return Response(EvalRunSerializer(run_payload(run)).data)


class ClaimSerializer(serializers.Serializer):
    class Meta:
        ref_name = "EvalRunClaim"

    id = serializers.IntegerField()
    lease = serializers.CharField(help_text="Send it back with progress and results.")
    lease_until = serializers.DateTimeField()
    attempt = serializers.IntegerField()
    suite = serializers.CharField()
    snapshot = serializers.CharField()
    snapshot_digest = serializers.CharField()
    metrics = serializers.ListField(child=serializers.CharField(), help_text="Every metric to score.")
    lower_is_better = serializers.ListField(child=serializers.CharField())
    subsets = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    reference_scores = serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text="The vendor's published scores of this suite on this snapshot, if any (metric -> score).",
    )
    progress_url = serializers.CharField()
    results_url = serializers.CharField()


def claim_payload(run: EvalRun) -> dict:
    baseline = (
        ProcurementBaseline.objects.filter(organization_id=run.organization_id, suite_id=run.suite_id)
        .select_related("result")
        .first()
    )
    base_scores = baseline.result.scores if baseline else {}
    metrics = sorted(
        set(run.suite.tolerances or {}) | set(run.suite.lower_is_better or []) | set(base_scores)
    )
    published = EvalResult.objects.filter(suite_id=run.suite_id, snapshot_id=run.snapshot_id).first()
    return {
        "id": run.pk,
        "lease": run.lease_token,
        "lease_until": run.lease_until,
        "attempt": run.attempts,
        "suite": run.suite.slug,
        "snapshot": run.snapshot.name,
        "snapshot_digest": run.snapshot.digest,
        "metrics": metrics,
        "lower_is_better": sorted(run.suite.lower_is_better or []),
        "subsets": {m: sorted((base_scores.get(m) or {}).get("subsets") or {}) for m in metrics},
        "reference_scores": {m: e.get("score") for m, e in (published.scores if published else {}).items()},
        "progress_url": reverse("api:eval-run-progress", kwargs={"run_id": run.pk}),
        "results_url": reverse("api:eval-run-results", kwargs={"run_id": run.pk}),
    }


class EvalRunClaimApi(APIView):
    authentication_classes = RUNNER_AUTH
    permission_classes = [IsEvalRunner]

    @extend_schema(
        operation_id="eval_runs_claim",
        responses={
            200: OpenApiResponse(ClaimSerializer, description="A run, leased to this runner."),
            204: OpenApiResponse(description="Nothing queued."),
            **errors(401, 403, 404, 429),
        },
    )
    def get(self, request: Request) -> Response:
        run = services.eval_run_claim(runner=request_runner(request))
        if run is None:
            return Response(status=204)
        return Response(ClaimSerializer(claim_payload(run)).data)


class EvalRunProgressApi(APIView):
    authentication_classes = RUNNER_AUTH
    permission_classes = [IsEvalRunner]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "EvalRunProgress"

        lease = serializers.CharField(max_length=64)
        progress = serializers.IntegerField(min_value=0, max_value=100)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "EvalRunLease"

        id = serializers.IntegerField()
        progress = serializers.IntegerField()
        lease_until = serializers.DateTimeField()

    @extend_schema(
        operation_id="eval_runs_progress",
        request=InputSerializer,
        responses={200: OutputSerializer, **errors(400, 401, 403, 404, 429), 409: CONFLICT},
    )
    def post(self, request: Request, run_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = services.eval_run_progress(
            runner=request_runner(request), run_id=run_id,
            lease_token=data.validated_data["lease"], progress=data.validated_data["progress"],
        )  # fmt: skip
        return Response({"id": run.pk, "progress": run.progress, "lease_until": run.lease_until})


class EvalRunResultsApi(APIView):
    authentication_classes = RUNNER_AUTH
    permission_classes = [IsEvalRunner]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "EvalRunResults"

        lease = serializers.CharField(max_length=64, help_text="The lease of the claim.")
        suite = serializers.CharField(max_length=100)
        snapshot = serializers.CharField(max_length=100)
        scores = serializers.JSONField(help_text='{metric: {"score": number, "subsets": {name: number}}}')
        cases = serializers.JSONField(required=False, allow_null=True)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "EvalRunAccepted"

        id = serializers.IntegerField()
        state = serializers.CharField()
        regressions = serializers.ListField(child=serializers.CharField())

    @extend_schema(
        operation_id="eval_runs_results",
        request=InputSerializer,
        responses={200: OutputSerializer, **errors(400, 401, 403, 404, 429), 409: CONFLICT},
    )
    def post(self, request: Request, run_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run = services.eval_run_complete(
            runner=request_runner(request), run_id=run_id, lease_token=values["lease"],
            suite=values["suite"], snapshot=values["snapshot"], scores=values["scores"], cases=values.get("cases"),
        )  # fmt: skip
        _, rows = selectors.run_deltas(run)
        return Response(
            {"id": run.pk, "state": run.state, "regressions": [m["metric"] for m in rows if m["regression"]]}
        )


# --------------------------------------------------------------------------------------------
# Audit packs
# --------------------------------------------------------------------------------------------


def pack_payload(pack: AuditPack) -> dict:
    ready = pack.status == ExportStatus.READY and bool(pack.file_path)
    return {
        "id": pack.pk,
        "organization": pack.organization.slug,
        "aliases": pack.aliases,
        "from": pack.period_from,
        "to": pack.period_to,
        "status": pack.status,
        "progress": pack.progress,
        "file_sha256": pack.file_sha256,
        "created_at": pack.created_at,
        "finished_at": pack.finished_at,
        "expires_at": pack.expires_at,
        "error": pack.error,
        "status_url": reverse("api:audit-pack-status", kwargs={"pack_id": pack.pk}),
        "download_url": reverse("api:audit-pack-download", kwargs={"pack_id": pack.pk}) if ready else None,
    }


class AuditPackSerializer(serializers.Serializer):
    class Meta:
        ref_name = "AuditPack"

    id = serializers.IntegerField()
    organization = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField(), help_text="Empty: every alias.")
    # "from" is a keyword: declared through the class namespace.
    locals()["from"] = serializers.DateTimeField(allow_null=True)
    to = serializers.DateTimeField(allow_null=True)
    status = serializers.ChoiceField(choices=ExportStatus.choices)
    progress = serializers.IntegerField(min_value=0, max_value=100)
    file_sha256 = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    status_url = serializers.CharField()
    download_url = serializers.CharField(allow_null=True)


class AuditPackRequestApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AuditPackRequest"

        aliases = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, max_length=services.MAX_ALIASES,
            help_text="Alias names to cover; omitted or empty: every alias you are pinned on.",
        )  # fmt: skip
        locals()["from"] = serializers.CharField(
            required=False, allow_blank=True, max_length=40, help_text="ISO 8601 date or date-time."
        )
        to = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=40,
            help_text="ISO 8601 date (whole day) or date-time.",
        )

    @extend_schema(
        operation_id="audit_packs_request",
        request=InputSerializer,
        responses={
            202: OpenApiResponse(AuditPackSerializer, description="Queued: poll status_url."),
            **errors(400, 401, 403, 404, 429),
        },
    )
    def post(self, request: Request) -> Response:
        org = request_organization(request)
        permission_require(request_role(request), Permission.BUILD_AUDIT_PACK)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        pack = services.audit_pack_request(
            org=org, aliases=values.get("aliases"), period_from=values.get("from"), period_to=values.get("to"),
            acting_user=_actor(request),
        )  # fmt: skip
        pack.refresh_from_db()
        return Response(AuditPackSerializer(pack_payload(pack)).data, status=202)


def _pack_for(request: Request, pack_id: int) -> AuditPack:
    org = request_organization(request)
    pack = selectors.audit_pack_get(org=org, pack_id=pack_id)
    permission_require(request_role(request), Permission.BUILD_AUDIT_PACK)
    return pack


class AuditPackStatusApi(APIView):
    @extend_schema(
        operation_id="audit_packs_get", responses={200: AuditPackSerializer, **errors(401, 403, 404, 429)}
    )
    def get(self, request: Request, pack_id: int) -> Response:
        return Response(AuditPackSerializer(pack_payload(_pack_for(request, pack_id))).data)


def audit_pack_file_response(pack: AuditPack) -> FileResponse:
    """The zip of a ready pack; Conflict (409) while it builds, after a failure, or once expired."""
    if pack.status != ExportStatus.READY or not pack.file_path:
        raise Conflict(
            f"Audit pack #{pack.pk} is {pack.status}, not a ready file.", fields={"status": pack.status}
        )
    path = Path(settings.MEDIA_ROOT) / pack.file_path
    if not path.exists():
        raise Conflict(f"The file of audit pack #{pack.pk} is gone.", fields={"status": "expired"})
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=auditpack.audit_pack_filename(pack),
        content_type="application/zip",
    )


class AuditPackDownloadApi(APIView):
    @extend_schema(
        operation_id="audit_packs_download",
        responses={
            (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="The pack (zip)."),
            409: CONFLICT,
            **errors(401, 403, 404, 429),
        },
    )
    def get(self, request: Request, pack_id: int):
        return audit_pack_file_response(_pack_for(request, pack_id))

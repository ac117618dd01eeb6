"""REST API routes under /api/v1/ (the public interface: docs/api.md)."""

from django.urls import path

from contracts.audit import api as audit_api
from contracts.billing import api as billing_api
from contracts.bugs import api as bug_api
from contracts.catalog import api as catalog_api
from contracts.consent import api as consent_api
from contracts.diffs import api as diff_api
from contracts.evals import api as evals_api
from contracts.gateway import api as gateway_api
from contracts.ledger import api as export_api
from contracts.pins import api as pins_api
from contracts.renewal import api as renewal_api

app_name = "api"

urlpatterns = [
    path("audit-log/", audit_api.AuditLogApi.as_view(), name="audit-log"),
    path("snapshots/", catalog_api.SnapshotListApi.as_view(), name="snapshot-list"),
    path("snapshots/<slug:snapshot_id>/", catalog_api.SnapshotDetailApi.as_view(), name="snapshot-detail"),
    path(
        "snapshots/<slug:snapshot_id>/changelog/",
        catalog_api.SnapshotChangelogApi.as_view(),
        name="snapshot-changelog",
    ),
    path("aliases/<slug:name>/history/", catalog_api.AliasHistoryApi.as_view(), name="alias-history"),
    path("pins/", pins_api.PinListApi.as_view(), name="pin-list"),
    path("diffs/<slug:a>...<slug:b>/", diff_api.DiffApi.as_view(), name="diff"),
    path("evals/", evals_api.EvalUploadApi.as_view(), name="eval-upload"),
    path("evals/<int:result_id>/baseline/", evals_api.EvalBaselineApi.as_view(), name="eval-baseline"),
    path(
        "snapshots/<slug:snapshot_id>/golden-samples/",
        evals_api.GoldenSampleUploadApi.as_view(),
        name="snapshot-golden-samples",
    ),
    path("resolve/<slug:alias>/", pins_api.ResolveApi.as_view(), name="resolve"),
    path("migrations/", consent_api.MigrationListApi.as_view(), name="migration-list"),
    path("migrations/<int:migration_id>/", consent_api.MigrationDetailApi.as_view(), name="migration-detail"),
    path(
        "migrations/<int:migration_id>/consent/",
        consent_api.MigrationConsentApi.as_view(),
        name="migration-consent",
    ),
    path(
        "migrations/<int:migration_id>/defer/",
        consent_api.MigrationDeferApi.as_view(),
        name="migration-defer",
    ),
    path(
        "migrations/<int:migration_id>/decline/",
        consent_api.MigrationDeclineApi.as_view(),
        name="migration-decline",
    ),
    path(
        "migrations/<int:migration_id>/rollback/",
        consent_api.MigrationRollbackApi.as_view(),
        name="migration-rollback",
    ),
    path("consents/", consent_api.ConsentListApi.as_view(), name="consent-list"),
    path("consents/verify/", consent_api.ConsentVerifyApi.as_view(), name="consent-verify"),
    path("consents/export/", export_api.ConsentExportApi.as_view(), name="consent-export"),
    path(
        "consents/exports/<int:export_id>/",
        export_api.ConsentExportStatusApi.as_view(),
        name="consent-export-status",
    ),
    path(
        "consents/exports/<int:export_id>/download/",
        export_api.ConsentExportDownloadApi.as_view(),
        name="consent-export-download",
    ),
    path("bug-reports/", bug_api.BugReportListApi.as_view(), name="bug-report-list"),
    path("bug-reports/<int:report_id>/", bug_api.BugReportDetailApi.as_view(), name="bug-report-detail"),
    path("receipts/verify/", bug_api.ReceiptVerifyApi.as_view(), name="receipt-verify"),
    path("stripe/webhook/", billing_api.StripeWebhookApi.as_view(), name="stripe-webhook"),
    path("gateway/pin-map/", gateway_api.GatewayPinMapApi.as_view(), name="gateway-pin-map"),
    path("gateway/receipt-keys/", gateway_api.GatewayReceiptKeyApi.as_view(), name="gateway-receipt-keys"),
    path("gateway/usage/", gateway_api.GatewayUsageApi.as_view(), name="gateway-usage"),
    path("usage/", gateway_api.UsageReportApi.as_view(), name="usage"),
    path("eval-runs/", renewal_api.EvalRunRequestApi.as_view(), name="eval-run-request"),
    path("eval-runs/claim/", renewal_api.EvalRunClaimApi.as_view(), name="eval-run-claim"),
    path("eval-runs/<int:run_id>/", renewal_api.EvalRunDetailApi.as_view(), name="eval-run-detail"),
    path(
        "eval-runs/<int:run_id>/progress/", renewal_api.EvalRunProgressApi.as_view(), name="eval-run-progress"
    ),
    path("eval-runs/<int:run_id>/results/", renewal_api.EvalRunResultsApi.as_view(), name="eval-run-results"),
    path("audit-packs/", renewal_api.AuditPackRequestApi.as_view(), name="audit-pack-request"),
    path("audit-packs/<int:pack_id>/", renewal_api.AuditPackStatusApi.as_view(), name="audit-pack-status"),
    path(
        "audit-packs/<int:pack_id>/download/",
        renewal_api.AuditPackDownloadApi.as_view(),
        name="audit-pack-download",
    ),
    path("extended-support/checkout/", billing_api.ExtendedSupportCheckoutApi.as_view(), name="es-checkout"),
]

from csp.decorators import csp_update
from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal.views import account, catalog, operations, settings_pages
from portal.views import auth as auth_views
from portal.views import billing as billing_views
from portal.views import bugs as bug_views
from portal.views import dashboard as views
from portal.views import diffs as diff_views
from portal.views import exports as export_views
from portal.views import identity as identity_views
from portal.views import migrations as migration_views
from portal.views import notifications as notification_views
from portal.views import renewal as renewal_views
from portal.views import usage as usage_views

portal_patterns = (
    [
        path("", views.home, name="home"),
        path("o/<slug:org>/bugs/", bug_views.bug_list, name="bugs"),
        path("o/<slug:org>/bugs/new/", bug_views.bug_file, name="bug_file"),
        path("o/<slug:org>/bugs/<int:report_id>/", bug_views.bug_detail, name="bug_detail"),
        path("staff/bugs/", bug_views.staff_bug_queue, name="staff_bugs"),
        path("staff/bugs/<int:report_id>/", bug_views.staff_bug_detail, name="staff_bug_detail"),
        path(
            "staff/bugs/<int:report_id>/status/", bug_views.staff_bug_transition, name="staff_bug_transition"
        ),
        path("o/<slug:org>/", views.dashboard, name="dashboard"),
        path("o/<slug:org>/usage/", usage_views.usage_page, name="usage"),
        path("staff/usage/", usage_views.staff_usage, name="staff_usage"),
        path(
            "staff/usage/<slug:snapshot_id>/", usage_views.staff_usage_snapshot, name="staff_usage_snapshot"
        ),
        path("o/<slug:org>/exports/", export_views.exports_page, name="exports"),
        path("o/<slug:org>/exports/download/", export_views.download, name="export_stream"),
        path("o/<slug:org>/exports/new/", export_views.export_new, name="export_new"),
        path("o/<slug:org>/exports/<int:export_id>/", export_views.export_row, name="export_row"),
        path(
            "o/<slug:org>/exports/<int:export_id>/download/",
            export_views.export_download,
            name="export_download",
        ),
        path(".well-known/consent-signing-key.pem", export_views.signing_key, name="consent_signing_key"),
        path(".well-known/pdf-signing-cert.pem", export_views.pdf_signing_cert, name="pdf_signing_cert"),
        path("o/<slug:org>/diff/", diff_views.diff_pick, name="diff_pick"),
        path("o/<slug:org>/diff/<slug:a>...<slug:b>/", diff_views.diff_page, name="diff"),
        path("o/<slug:org>/diff/<slug:a>...<slug:b>/pdf/", diff_views.diff_pdf, name="diff_pdf"),
        path(
            "o/<slug:org>/diff/<slug:a>...<slug:b>/pdf/download/",
            diff_views.diff_pdf_download,
            name="diff_pdf_download",
        ),
        path("o/<slug:org>/baselines/", diff_views.baselines, name="baselines"),
        path("o/<slug:org>/baselines/<int:result_id>/", diff_views.baseline_mark, name="baseline_mark"),
        path("o/<slug:org>/eval-runs/new/", renewal_views.eval_run_new, name="eval_run_new"),
        path("o/<slug:org>/eval-runs/<int:run_id>/", renewal_views.eval_run_row, name="eval_run_row"),
        path("o/<slug:org>/exports/audit-packs/new/", renewal_views.audit_pack_new, name="audit_pack_new"),
        path(
            "o/<slug:org>/exports/audit-packs/<int:pack_id>/",
            renewal_views.audit_pack_row,
            name="audit_pack_row",
        ),
        path(
            "o/<slug:org>/exports/audit-packs/<int:pack_id>/download/",
            renewal_views.audit_pack_download,
            name="audit_pack_download",
        ),
        path("orgs/", account.org_switch, name="org_switch"),
        path("accounts/preferences/", account.preferences, name="preferences"),
        path("accounts/preferences/save/", account.preferences_save, name="preferences_save"),
        path("o/<slug:org>/snapshots/<slug:snapshot_id>/", catalog.snapshot_detail, name="snapshot"),
        path(
            "snapshots/<slug:snapshot_id>/deprecation/",
            catalog.snapshot_deprecation,
            name="snapshot_deprecation",
        ),
        path("o/<slug:org>/timeline/", catalog.timeline, name="timeline"),
        path("o/<slug:org>/changelog/", catalog.changelog, name="changelog"),
        path("o/<slug:org>/changelog/feed.atom", catalog.changelog_feed, name="changelog_feed"),
        path("o/<slug:org>/feed-token/", notification_views.feed_token_issue, name="feed_token_issue"),
        path(
            "o/<slug:org>/feed-token/revoke/", notification_views.feed_token_revoke, name="feed_token_revoke"
        ),
        path("o/<slug:org>/settings/", settings_pages.settings_home, name="settings"),
        path("o/<slug:org>/pins/<int:pin_id>/policy/", settings_pages.pin_policy, name="pin_policy"),
        path("o/<slug:org>/settings/keys/", settings_pages.api_keys, name="api_keys"),
        path("o/<slug:org>/settings/audit/", identity_views.audit_log, name="audit"),
        path("o/<slug:org>/settings/members/", identity_views.members, name="members"),
        path("o/<slug:org>/settings/members/invite/", identity_views.member_invite, name="member_invite"),
        path(
            "o/<slug:org>/settings/members/<int:membership_id>/role/",
            identity_views.member_role,
            name="member_role",
        ),
        path(
            "o/<slug:org>/settings/members/<int:membership_id>/remove/",
            identity_views.member_remove,
            name="member_remove",
        ),
        path(
            "o/<slug:org>/settings/invitations/<int:invitation_id>/revoke/",
            identity_views.invitation_revoke,
            name="invitation_revoke",
        ),
        path("o/<slug:org>/settings/sso/", identity_views.sso_settings, name="sso"),
        path("o/<slug:org>/settings/sso/provider/", identity_views.sso_provider, name="sso_provider"),
        path("o/<slug:org>/settings/sso/policy/", identity_views.sso_policy, name="sso_policy"),
        path("o/<slug:org>/settings/sso/domains/", identity_views.sso_domain_add, name="sso_domain_add"),
        path(
            "o/<slug:org>/settings/sso/domains/<int:domain_id>/remove/",
            identity_views.sso_domain_remove,
            name="sso_domain_remove",
        ),
        path(
            "o/<slug:org>/settings/sso/scim-tokens/",
            identity_views.scim_token_create,
            name="scim_token_create",
        ),
        path(
            "o/<slug:org>/settings/sso/scim-tokens/<int:token_id>/revoke/",
            identity_views.scim_token_revoke,
            name="scim_token_revoke",
        ),
        path(
            "o/<slug:org>/settings/sso/scim-groups/<int:group_id>/role/",
            identity_views.scim_group_role,
            name="scim_group_role",
        ),
        path("invitations/<str:token>/", identity_views.invitation, name="invitation"),
        path("invitations/<str:token>/accept/", identity_views.invitation_accept, name="invitation_accept"),
        path("invitations/<str:token>/signup/", identity_views.invitation_signup, name="invitation_signup"),
        path("o/<slug:org>/billing/", billing_views.billing_page, name="billing"),
        path("o/<slug:org>/billing/portal/", billing_views.billing_portal, name="billing_portal"),
        path(
            "o/<slug:org>/billing/extended-support/<slug:snapshot_id>/",
            billing_views.extended_support_confirm,
            name="billing_confirm",
        ),
        path(
            "o/<slug:org>/billing/checkout/", billing_views.extended_support_checkout, name="billing_checkout"
        ),
        path(
            "o/<slug:org>/billing/simulate/", billing_views.extended_support_simulate, name="billing_simulate"
        ),
        path("o/<slug:org>/settings/keys/new/", settings_pages.api_key_create, name="api_key_create"),
        path(
            "o/<slug:org>/settings/keys/<int:key_id>/revoke/",
            settings_pages.api_key_revoke,
            name="api_key_revoke",
        ),
        path("o/<slug:org>/migrations/", migration_views.migration_list, name="migrations"),
        path("o/<slug:org>/pins/<int:pin_id>/propose/", migration_views.pin_propose, name="pin_propose"),
        path(
            "o/<slug:org>/migrations/<int:migration_id>/",
            migration_views.migration_detail,
            name="migration_detail",
        ),
        path(
            "o/<slug:org>/migrations/<int:migration_id>/consent/",
            migration_views.migration_consent,
            name="migration_consent",
        ),
        path(
            "o/<slug:org>/migrations/<int:migration_id>/defer/",
            migration_views.migration_defer,
            name="migration_defer",
        ),
        path(
            "o/<slug:org>/migrations/<int:migration_id>/decline/",
            migration_views.migration_decline,
            name="migration_decline",
        ),
        path(
            "o/<slug:org>/migrations/<int:migration_id>/rollback/",
            migration_views.migration_rollback,
            name="migration_rollback",
        ),
        path("o/<slug:org>/consents/", migration_views.consent_history, name="consents"),
        path("o/<slug:org>/consents/verify/", migration_views.consent_verify, name="consent_verify"),
        path("o/<slug:org>/exports/verify_bundle.py", export_views.verifier_download, name="export_verifier"),
        path("o/<slug:org>/terms/", migration_views.terms_page, name="terms"),
        path("o/<slug:org>/terms/accept/", migration_views.terms_accept, name="terms_accept"),
        path("o/<slug:org>/notifications/", notification_views.notifications_page, name="notifications"),
        path(
            "o/<slug:org>/notifications/contacts/",
            notification_views.contact_add,
            name="notification_contact_add",
        ),
        path(
            "o/<slug:org>/notifications/contacts/<int:contact_id>/remove/",
            notification_views.contact_remove,
            name="notification_contact_remove",
        ),
        path(
            "o/<slug:org>/notifications/webhooks/",
            notification_views.webhook_add,
            name="notification_webhook_add",
        ),
        path(
            "o/<slug:org>/notifications/webhooks/<int:webhook_id>/rotate/",
            notification_views.webhook_rotate,
            name="notification_webhook_rotate",
        ),
        path(
            "o/<slug:org>/notifications/webhooks/<int:webhook_id>/test/",
            notification_views.webhook_test,
            name="notification_webhook_test",
        ),
        path(
            "o/<slug:org>/notifications/webhooks/<int:webhook_id>/remove/",
            notification_views.webhook_delete,
            name="notification_webhook_delete",
        ),
        path(
            "o/<slug:org>/notifications/calendar/regenerate/",
            notification_views.calendar_regenerate,
            name="notification_calendar_regenerate",
        ),
        path(
            "o/<slug:org>/notifications/calendar/revoke/",
            notification_views.calendar_revoke,
            name="notification_calendar_revoke",
        ),
        path("notices/ack/<str:token>/", notification_views.notice_ack, name="notice-ack"),
        path(
            "notices/unsubscribe/<str:token>/",
            notification_views.notice_unsubscribe,
            name="notice-unsubscribe",
        ),
    ],
    "portal",
)

# Django tries the patterns in order. The API (the serving layer's resolve and pin map among it)
# and the health probes come first: behind the portal's hundred page patterns every API request
# paid for a hundred failed matches before reaching its view. No pattern overlaps another.
urlpatterns = [
    path("api/v1/", include("contracts.urls")),
    path("api/v1/", include("notifications.api_urls")),
    path("healthz", operations.healthz, name="healthz"),
    path("readyz", operations.readyz, name="readyz"),
    path("metrics", operations.metrics, name="metrics"),
    path("", include(portal_patterns)),
    path("accounts/password_reset/", account.RateLimitedPasswordResetView.as_view(), name="password_reset"),
    # The portal's e-mail-first sign-in keeps /accounts/login/ (and the names "login" and allauth's
    # "account_login"); django.contrib.auth serves logout and password reset, allauth the SSO
    # callbacks (/accounts/oidc/<provider>/login/callback/) and second factors (/accounts/2fa/).
    path("accounts/login/", auth_views.login_view, name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/", include("portal.allauth_urls")),
    path("admin/", admin.site.urls),
    path("scim/v2/", include("portal.scim.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from drf-spectacular-sidecar (no CDN); its script is a separate file, so the CSP
    # only needs to admit the inline <style> of that one page.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
]

if settings.DEBUG:
    urlpatterns.append(path("outbox/", notification_views.outbox, name="outbox"))

handler400 = "portal.views.account.bad_request"
handler403 = "portal.views.account.permission_denied"
handler404 = "portal.views.account.page_not_found"
handler500 = "portal.views.account.server_error"

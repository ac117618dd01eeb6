from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from csp.decorators import csp_update
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal.views import dashboard as views

portal_patterns = (
    [
        path("", views.home, name="home"),
        path("o/<slug:org>/", views.dashboard, name="dashboard"),
    ],
    "portal",
)

urlpatterns = [
    path("", include(portal_patterns)),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("contracts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI from drf-spectacular-sidecar (no CDN); its script is a separate file, so the CSP
    # only needs to admit the inline <style> of that one page.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(SpectacularSwaggerSplitView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("healthz", views.healthz, name="healthz"),
]

if settings.DEBUG:
    urlpatterns.append(path("outbox/", include("notifications.outbox_urls")))

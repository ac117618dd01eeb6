"""REST API routes under /api/v1/ (DESIGN.md's public interface)."""

from django.urls import path

from contracts import api

app_name = "api"

urlpatterns = [
    path("snapshots/", api.SnapshotListApi.as_view(), name="snapshot-list"),
    path("snapshots/<slug:snapshot_id>/", api.SnapshotDetailApi.as_view(), name="snapshot-detail"),
    path("snapshots/<slug:snapshot_id>/changelog/", api.SnapshotChangelogApi.as_view(), name="snapshot-changelog"),
    path("aliases/<slug:name>/history/", api.AliasHistoryApi.as_view(), name="alias-history"),
    path("pins/", api.PinListApi.as_view(), name="pin-list"),
    path("resolve/<slug:alias>/", api.ResolveApi.as_view(), name="resolve"),
]

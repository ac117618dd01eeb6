"""/scim/v2/: django-scim2's views, with the fixes RFC 7644 needs.

- /ResourceTypes and /Schemas list responses carry totalResults (§3.4.2);
- an id that is not a UUID, or another organisation's, is 404 (never a server error);
- a body that is not a JSON object, or malformed values, answer 400 with an error document.
"""

from __future__ import annotations

import json
import uuid

from django.urls import path
from django_scim import exceptions
from django_scim import views as scim_views

from portal.scim.auth import MAX_RESULTS

app_name = "scim"


class _ListTotals:
    def get(self, request, uuid=None, *args, **kwargs):
        response = super().get(request, uuid, *args, **kwargs)
        if uuid is None and response.status_code == 200:
            doc = json.loads(response.content)
            count = len(doc.get("Resources", []))
            doc.update(totalResults=count, itemsPerPage=count, startIndex=1)
            response.content = json.dumps(doc)
        return response


class _Resources:
    def get_object(self):
        try:
            uuid.UUID(str(self.kwargs.get("uuid")))
        except ValueError:
            raise exceptions.NotFoundError(self.kwargs.get("uuid")) from None
        return super().get_object()

    def load_body(self, body):
        data = super().load_body(body)
        if body and not isinstance(data, dict):
            raise exceptions.BadRequestError("The body must be a JSON object", scim_type="invalidSyntax")
        return data

    def _page(self, request):
        start, count = super()._page(request)
        if count is not None and count < 0:
            raise exceptions.BadRequestError("Invalid count (must be >= 0)", scim_type="invalidValue")
        return start, min(count, MAX_RESULTS) if count is not None else count


class ResourceTypesView(_ListTotals, scim_views.ResourceTypesView):
    pass


class SchemasView(_ListTotals, scim_views.SchemasView):
    pass


class UsersView(_Resources, scim_views.UsersView):
    pass


class GroupsView(_Resources, scim_views.GroupsView):
    pass


class UserSearchView(_Resources, scim_views.UserSearchView):
    pass


class GroupSearchView(_Resources, scim_views.GroupSearchView):
    pass


not_implemented = scim_views.SCIMView.as_view(implemented=False)


urlpatterns = [
    path(
        "ServiceProviderConfig",
        scim_views.ServiceProviderConfigView.as_view(),
        name="service-provider-config",
    ),
    path("ResourceTypes", ResourceTypesView.as_view(), name="resource-types"),
    path("ResourceTypes/<str:uuid>", ResourceTypesView.as_view(), name="resource-types"),
    path("Schemas", SchemasView.as_view(), name="schemas"),
    path("Schemas/<str:uuid>", SchemasView.as_view(), name="schemas"),
    path("Users/.search", UserSearchView.as_view(), name="users-search"),
    path("Users", UsersView.as_view(), name="users"),
    path("Users/<str:uuid>", UsersView.as_view(), name="users"),
    path("Groups/.search", GroupSearchView.as_view(), name="groups-search"),
    path("Groups", GroupsView.as_view(), name="groups"),
    path("Groups/<str:uuid>", GroupsView.as_view(), name="groups"),
    path("", not_implemented, name="root"),
    path(".search", not_implemented, name="search"),
    path("Me", not_implemented, name="me"),
    path("Bulk", not_implemented, name="bulk"),
]

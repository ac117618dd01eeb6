"""SCIM 2.0 at /scim/v2/ on django-scim2: authentication by a per-organisation token, scoping,
discovery documents, filters and PATCH.

Kept apart from portal.scim.adapters: django_scim.adapters reads the filter-parser setting when it
is imported, so the filter classes must live in a module that does not import it.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django_scim import constants, exceptions
from django_scim.filters import FilterQuery
from django_scim.models import SCIMServiceProviderConfig
from django_scim.schemas import ALL as DEFAULT_SCHEMAS

from contracts.identity import provisioning
from contracts.identity import selectors as identity_selectors
from contracts.models import ActorKind, Organization, ScimGroup, ScimToken, ScimUser

SCIM_PREFIX = "/scim/v2/"
MAX_RESULTS = 200


class ScimPrincipal:
    """request.user on /scim/v2/ when a valid organisation token was presented (never a session)."""

    is_authenticated = True
    is_active = True
    is_anonymous = False
    is_staff = False
    is_superuser = False
    pk = None
    id = None
    audit_actor_kind = ActorKind.SCIM_TOKEN

    def __init__(self, token: ScimToken):
        self.token = token
        self.org: Organization = token.organization

    @property
    def audit_actor_label(self) -> str:
        return f"scim-token:{self.token.prefix}"

    def __str__(self) -> str:
        return self.audit_actor_label


def _error(status: int, detail: str, scim_type: str | None = None, **headers) -> HttpResponse:
    body: dict[str, Any] = {"schemas": [constants.SchemaURI.ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return HttpResponse(
        json.dumps(body), status=status, content_type=constants.SCIM_CONTENT_TYPE, headers=headers
    )


def _is_error_document(response: HttpResponse) -> bool:
    if getattr(response, "streaming", False):
        return False
    try:
        doc = json.loads(response.content or b"null")
    except ValueError:
        return False
    return isinstance(doc, dict) and constants.SchemaURI.ERROR in (doc.get("schemas") or [])


class ScimTokenMiddleware:
    """On /scim/v2/ only: the bearer token is the whole identity (a browser session never counts);
    every error answers an RFC 7644 error document; ?attributes= / ?excludedAttributes= project."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(SCIM_PREFIX):
            return self.get_response(request)
        request.user = AnonymousUser()
        request.scim_org = None
        scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and raw.strip():
            token = identity_selectors.scim_token_for_raw(raw.strip())
            if token is not None:
                provisioning.scim_token_touch(token=token)
                request.user = ScimPrincipal(token)
                request.scim_org = token.organization
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_error_document(response):
            detail = {
                401: "Authentication required: Authorization: Bearer <SCIM token>",
                404: "Not found",
                405: "Method not allowed",
                501: "Not implemented",
            }
            headers = (
                {"WWW-Authenticate": response["WWW-Authenticate"]}
                if response.has_header("WWW-Authenticate")
                else {}
            )
            response = _error(response.status_code, detail.get(response.status_code, "Error"), **headers)
        return _project_attributes(request, response)


_ALWAYS_RETURNED = {"id", "schemas", "meta"}


def _names(value: str) -> set[str]:
    return {part.strip().split(".")[0].lower() for part in value.split(",") if part.strip()}


def _project_attributes(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """RFC 7644 §3.4.2.5 for top-level attributes (django-scim2 ignores the parameters)."""
    include = _names(request.GET.get("attributes", ""))
    exclude = _names(request.GET.get("excludedAttributes", ""))
    if not (include or exclude) or response.status_code != 200 or not response.content:
        return response
    doc = json.loads(response.content)

    def project(resource: dict) -> dict:
        return {
            key: value
            for key, value in resource.items()
            if key in _ALWAYS_RETURNED
            or ((not include or key.lower() in include) and key.lower() not in exclude)
        }

    if doc.get("schemas") == [constants.SchemaURI.LIST_RESPONSE]:
        doc["Resources"] = [project(r) for r in doc.get("Resources", [])]
    elif "id" in doc:
        doc = project(doc)
    response.content = json.dumps(doc)
    return response


def is_scim_principal(user) -> bool:
    return isinstance(user, ScimPrincipal)


def base_location(request=None, *args, **kwargs) -> str:
    return f"{request.scheme}://{request.get_host()}" if request is not None else "http://localhost"


def org_filter_kwargs_getter(model):
    def get_kwargs(request, *args, **kwargs) -> dict:
        return {"organization_id": request.scim_org.pk}

    return get_kwargs


def scim_user_model():
    return ScimUser


def scim_group_model():
    return ScimGroup


class ServiceProviderConfig(SCIMServiceProviderConfig):
    def to_dict(self) -> dict:
        config = super().to_dict()
        config["filter"] = {"supported": True, "maxResults": MAX_RESULTS}
        config["changePassword"] = {"supported": False}
        config["patch"] = {"supported": True}
        config["bulk"] = {"supported": False, "maxOperations": 0, "maxPayloadSize": 0}
        config["etag"] = {"supported": False}
        config["sort"] = {"supported": False}
        return config


_USER_ATTRIBUTES = {"userName", "name", "displayName", "active", "emails", "groups", "externalId"}
_GROUP_ATTRIBUTES = {"displayName", "members", "externalId"}


def schemas_getter() -> list[dict]:
    """Publish only what is stored: a client (and scim2-tester) may set every published attribute."""
    published = []
    for schema in DEFAULT_SCHEMAS:
        schema = copy.deepcopy(schema)
        if schema["id"] == constants.SchemaURI.USER:
            schema["attributes"] = [a for a in schema["attributes"] if a["name"] in _USER_ATTRIBUTES]
            for attribute in schema["attributes"]:
                if attribute["name"] == "emails":
                    attribute["subAttributes"] = [
                        s for s in attribute["subAttributes"] if s["name"] == "value"
                    ]
                if attribute["name"] == "name":
                    attribute["subAttributes"] = [
                        s for s in attribute["subAttributes"] if s["name"] in ("givenName", "familyName")
                    ]
                if attribute["name"] in ("displayName", "groups"):
                    attribute["mutability"] = "readOnly"
                if attribute["name"] == "active":
                    # Always present (true unless the provider deprovisions): it cannot be removed.
                    attribute["required"] = True
        elif schema["id"] == constants.SchemaURI.GROUP:
            schema["attributes"] = [a for a in schema["attributes"] if a["name"] in _GROUP_ATTRIBUTES]
            for attribute in schema["attributes"]:
                if attribute["name"] == "displayName":
                    attribute["required"] = True
                if attribute["name"] == "members":
                    attribute["subAttributes"] = [
                        s for s in attribute["subAttributes"] if s["name"] != "display"
                    ]
                    attribute["subAttributes"].append(
                        {
                            "name": "display",
                            "type": "string",
                            "multiValued": False,
                            "required": False,
                            "caseExact": False,
                            "mutability": "readOnly",
                            "returned": "default",
                            "uniqueness": "none",
                        }
                    )
        else:
            continue
        schema.setdefault("schemas", ["urn:ietf:params:scim:schemas:core:2.0:Schema"])
        published.append(schema)
    return published


_USER_TABLE = ScimUser._meta.db_table
_AUTH_TABLE = get_user_model()._meta.db_table
_GROUP_TABLE = ScimGroup._meta.db_table


class ScimUserFilterQuery(FilterQuery):
    model_getter = scim_user_model
    joins = (f"JOIN {_AUTH_TABLE} ON {_AUTH_TABLE}.id = {_USER_TABLE}.user_id",)
    attr_map = {
        ("userName", None, None): f"{_AUTH_TABLE}.username",
        ("emails", "value", None): f"{_AUTH_TABLE}.email",
        ("emails", None, None): f"{_AUTH_TABLE}.email",
        ("name", "givenName", None): f"{_AUTH_TABLE}.first_name",
        ("name", "familyName", None): f"{_AUTH_TABLE}.last_name",
        ("externalId", None, None): f"{_USER_TABLE}.external_id",
        ("active", None, None): f"{_USER_TABLE}.active",
    }

    @classmethod
    def get_extras(cls, q, request=None):
        return f" AND {_USER_TABLE}.organization_id = %s", [request.scim_org.pk]


class ScimGroupFilterQuery(FilterQuery):
    model_getter = scim_group_model
    attr_map = {
        ("displayName", None, None): f"{_GROUP_TABLE}.display_name",
        ("externalId", None, None): f"{_GROUP_TABLE}.external_id",
    }

    @classmethod
    def get_extras(cls, q, request=None):
        return f" AND {_GROUP_TABLE}.organization_id = %s", [request.scim_org.pk]


# -- PATCH (RFC 7644 §3.5.2) on the resource's document; the result is saved like a PUT ----------


def _key(doc: dict, name: str) -> str:
    return next((k for k in doc if k.lower() == name.lower()), name)


def _filtered_remove(doc: dict, path: str) -> None:
    attribute, _, rest = path.partition("[")
    condition, _, _sub = rest.partition("]")
    parts = condition.split(" eq ")
    if len(parts) != 2:
        raise exceptions.BadRequestError(f"Unsupported filter in path {path!r}", scim_type="invalidPath")
    field, wanted = parts[0].strip(), parts[1].strip().strip('"')
    attribute = _key(doc, attribute.strip())
    doc[attribute] = [item for item in doc.get(attribute) or [] if str(item.get(field)) != wanted]


def patch_apply(doc: dict, operations: Any) -> dict:
    if not isinstance(operations, list):
        raise exceptions.BadRequestError("Operations must be a list", scim_type="invalidSyntax")
    for operation in operations:
        if not isinstance(operation, dict):
            raise exceptions.BadRequestError("Each operation must be an object", scim_type="invalidSyntax")
        kind = str(operation.get("op") or "").lower()
        path, value = operation.get("path"), operation.get("value")
        if kind not in ("add", "replace", "remove"):
            raise exceptions.BadRequestError(f"Unknown PATCH op {kind!r}", scim_type="invalidSyntax")
        if path is not None and not isinstance(path, str):
            raise exceptions.BadRequestError("path must be a string", scim_type="invalidPath")
        if not path:
            if kind == "remove":
                raise exceptions.BadRequestError("remove needs a path", scim_type="noTarget")
            if not isinstance(value, dict):
                raise exceptions.BadRequestError("value must be an object", scim_type="invalidValue")
            for name, item in value.items():
                patch_apply(doc, [{"op": kind, "path": name, "value": item}])
            continue
        if "[" in path:
            if kind != "remove":
                raise exceptions.BadRequestError(f"Unsupported path {path!r}", scim_type="invalidPath")
            _filtered_remove(doc, path)
            continue
        head, _, sub = path.partition(".")
        head = _key(doc, head)
        if sub:
            node = doc.setdefault(head, {})
            if not isinstance(node, dict):
                raise exceptions.BadRequestError(f"{head} has no sub-attributes", scim_type="invalidPath")
            if kind == "remove":
                node.pop(sub, None)
            else:
                node[sub] = value
        elif kind == "remove":
            if isinstance(doc.get(head), list) and isinstance(value, list):
                drop = {str(v.get("value")) for v in value if isinstance(v, dict)}
                doc[head] = [m for m in doc[head] if str(m.get("value")) not in drop]
            else:
                doc.pop(head, None)
        elif kind == "add" and isinstance(doc.get(head), list):
            additions = value if isinstance(value, list) else [value]
            doc[head] = doc[head] + [v for v in additions if v not in doc[head]]
        elif kind == "add" and isinstance(doc.get(head), dict) and isinstance(value, dict):
            doc[head].update(value)
        else:
            doc[head] = value
    return doc

"""django-scim2 adapters: a ScimUser is the SCIM User, a ScimGroup the SCIM Group. Every write goes
through contracts.identity.provisioning; its refusals become RFC 7644 error documents."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from django.urls import reverse
from django_scim import constants, exceptions
from django_scim.adapters import SCIMGroup, SCIMUser

from contracts.errors import ApplicationError, Conflict, NotFound
from contracts.identity import provisioning
from contracts.models import ScimUser
from portal.scim.auth import ScimGroupFilterQuery, ScimUserFilterQuery, base_location, patch_apply


@contextlib.contextmanager
def scim_errors() -> Iterator[None]:
    try:
        yield
    except NotFound as error:
        raise exceptions.NotFoundError(error.message) from error
    except Conflict as error:
        raise exceptions.IntegrityError(error.message, scim_type="uniqueness") from error
    except ApplicationError as error:
        raise exceptions.BadRequestError(error.message, scim_type="invalidValue") from error


def _string(doc: dict, name: str, default: str = "") -> str:
    value = doc.get(name, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise exceptions.BadRequestError(f"{name} must be a string", scim_type="invalidValue")
    return value


def _resource_type(d: dict, endpoint: str) -> dict:
    d["endpoint"] = endpoint  # RFC 7643 §6: relative to the service's base URL
    return d


class ScimUserAdapter(SCIMUser):
    id_field = "scim_id"
    ATTR_MAP = ScimUserFilterQuery.attr_map

    @classmethod
    def resource_type_dict(cls, request=None):
        return _resource_type(super().resource_type_dict(request), "/Users")

    @property
    def user(self):
        return self.obj.user if self.obj.user_id else None

    def to_dict(self) -> dict:
        user = self.obj.user
        doc = {
            "schemas": [constants.SchemaURI.USER],
            "id": self.id,
            "userName": user.username,
            "displayName": f"{user.first_name} {user.last_name}".strip() or user.username,
            "emails": [{"value": user.email}] if user.email else [],
            "active": self.obj.active,
            "groups": [
                {
                    "value": str(group.scim_id),
                    "display": group.display_name,
                    "$ref": base_location(self.request)
                    + reverse("scim:groups", kwargs={"uuid": str(group.scim_id)}),
                }
                for group in self.obj.groups.all()
            ],
            "meta": {
                "resourceType": "User",
                "created": self.obj.created_at.isoformat(),
                "lastModified": self.obj.updated_at.isoformat(),
                "location": self.location,
            },
        }
        name = {k: v for k, v in (("givenName", user.first_name), ("familyName", user.last_name)) if v}
        if name:
            doc["name"] = name
        if self.obj.external_id:
            doc["externalId"] = self.obj.external_id
        return doc

    def validate_dict(self, d) -> None:
        if not isinstance(d, dict):
            raise exceptions.BadRequestError("The body must be a JSON object", scim_type="invalidSyntax")
        super().validate_dict(d)

    def from_dict(self, d: dict) -> None:
        if not isinstance(d, dict):
            raise exceptions.BadRequestError("The body must be a JSON object", scim_type="invalidSyntax")
        if not _string(d, "userName"):
            raise exceptions.BadRequestError("userName is required", scim_type="invalidValue")
        name = d.get("name") or {}
        emails = d.get("emails") or []
        if (
            not isinstance(name, dict)
            or not isinstance(emails, list)
            or not all(isinstance(e, dict) for e in emails)
        ):
            raise exceptions.BadRequestError(
                "name must be an object, emails a list of objects", scim_type="invalidValue"
            )
        active = d.get("active", True)
        if not isinstance(active, bool):
            raise exceptions.BadRequestError("active must be a boolean", scim_type="invalidValue")
        primary = next((e for e in emails if e.get("primary")), emails[0] if emails else {})
        self._incoming = {
            "user_name": _string(d, "userName"),
            "email": _string(primary, "value"),
            "given_name": _string(name, "givenName"),
            "family_name": _string(name, "familyName"),
            "external_id": _string(d, "externalId"),
            "active": active,
        }

    def save(self) -> None:
        with scim_errors():
            self.obj = provisioning.scim_user_save(
                org=self.request.scim_org,
                scim_user=self.obj if self.obj.pk else None,
                acting_user=self.request.user,
                **self._incoming,
            )

    def delete(self) -> None:
        with scim_errors():
            provisioning.scim_user_delete(scim_user=self.obj, acting_user=self.request.user)

    def handle_operations(self, operations) -> None:
        doc = self.to_dict()
        doc.pop("groups", None)
        self.from_dict(patch_apply(doc, operations))
        self.save()


class ScimGroupAdapter(SCIMGroup):
    id_field = "scim_id"
    ATTR_MAP = ScimGroupFilterQuery.attr_map

    @classmethod
    def resource_type_dict(cls, request=None):
        return _resource_type(super().resource_type_dict(request), "/Groups")

    def to_dict(self) -> dict:
        members = self.obj.members.select_related("user") if self.obj.pk else ScimUser.objects.none()
        doc = {
            "schemas": [constants.SchemaURI.GROUP],
            "id": self.id,
            "displayName": self.obj.display_name,
            "members": [
                {
                    "value": str(member.scim_id),
                    "type": "User",
                    "$ref": base_location(self.request)
                    + reverse("scim:users", kwargs={"uuid": str(member.scim_id)}),
                }
                for member in members
            ],
            "meta": {
                "resourceType": "Group",
                "created": self.obj.created_at.isoformat(),
                "lastModified": self.obj.updated_at.isoformat(),
                "location": self.location,
            },
        }
        if self.obj.external_id:
            doc["externalId"] = self.obj.external_id
        return doc

    def validate_dict(self, d) -> None:
        if not isinstance(d, dict):
            raise exceptions.BadRequestError("The body must be a JSON object", scim_type="invalidSyntax")

    def from_dict(self, d: dict) -> None:
        if not isinstance(d, dict):
            raise exceptions.BadRequestError("The body must be a JSON object", scim_type="invalidSyntax")
        if not _string(d, "displayName"):
            raise exceptions.BadRequestError("displayName is required", scim_type="invalidValue")
        members = d.get("members") or []
        if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
            raise exceptions.BadRequestError("members must be a list of objects", scim_type="invalidValue")
        self._incoming = {
            "display_name": _string(d, "displayName"),
            "external_id": _string(d, "externalId"),
            "member_ids": [str(m.get("value")) for m in members],
        }

    def save(self) -> None:
        with scim_errors():
            self.obj = provisioning.scim_group_save(
                org=self.request.scim_org,
                group=self.obj if self.obj.pk else None,
                acting_user=self.request.user,
                **self._incoming,
            )

    def delete(self) -> None:
        with scim_errors():
            provisioning.scim_group_delete(group=self.obj, acting_user=self.request.user)

    def handle_operations(self, operations) -> None:
        self.from_dict(patch_apply(self.to_dict(), operations))
        self.save()

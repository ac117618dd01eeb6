"""Which role may do what: the one table that services, pages and the API all consult.

An organisation member has exactly one role. Each organisation-scoped action names the permission it
needs; `permission_require` refuses with `Forbidden` (403), naming the roles that may.
"""

from __future__ import annotations

from enum import StrEnum

from contracts.errors import Forbidden
from contracts.models import Role


class Permission(StrEnum):
    VIEW = "view"  # every page and read of the organisation
    DECIDE_MIGRATIONS = "decide-migrations"  # consent, defer, decline, roll back
    ACCEPT_TERMS = "accept-terms"
    MARK_BASELINE = "mark-baseline"
    BUY_EXTENDED_SUPPORT = "buy-extended-support"
    MANAGE_SETTINGS = "manage-settings"  # API keys, pin policies, contacts, webhooks, calendar feed
    EXPORT_LEDGER = "export-ledger"  # consent exports, with IP addresses and user agents
    FILE_BUG_REPORTS = "file-bug-reports"
    REQUEST_EVAL_REFRESH = "request-eval-refresh"  # re-run a procurement suite on a served/proposed snapshot
    BUILD_AUDIT_PACK = "build-audit-pack"  # the signed audit pack (ledger records with IPs inside)
    VIEW_AUDIT_LOG = "view-audit-log"  # the audit log of admin actions, its CSV and API
    MANAGE_MEMBERS = "manage-members"  # invitations, roles, removals
    MANAGE_IDENTITY = "manage-identity"  # SSO, SCIM tokens, second-factor policy


ROLES_FOR: dict[Permission, frozenset[str]] = {
    Permission.VIEW: frozenset({Role.ADMIN, Role.MEMBER, Role.LEGAL}),
    Permission.DECIDE_MIGRATIONS: frozenset({Role.ADMIN}),
    Permission.ACCEPT_TERMS: frozenset({Role.ADMIN}),
    Permission.MARK_BASELINE: frozenset({Role.ADMIN}),
    Permission.BUY_EXTENDED_SUPPORT: frozenset({Role.ADMIN}),
    Permission.MANAGE_SETTINGS: frozenset({Role.ADMIN}),
    Permission.EXPORT_LEDGER: frozenset({Role.ADMIN, Role.LEGAL}),
    Permission.FILE_BUG_REPORTS: frozenset({Role.ADMIN, Role.MEMBER}),
    Permission.REQUEST_EVAL_REFRESH: frozenset({Role.ADMIN}),
    Permission.BUILD_AUDIT_PACK: frozenset({Role.ADMIN, Role.LEGAL}),
    Permission.VIEW_AUDIT_LOG: frozenset({Role.ADMIN, Role.LEGAL}),
    Permission.MANAGE_MEMBERS: frozenset({Role.ADMIN}),
    Permission.MANAGE_IDENTITY: frozenset({Role.ADMIN}),
}


def role_may(role: str | None, permission: Permission) -> bool:
    return role in ROLES_FOR[permission]


def permission_require(role: str | None, permission: Permission) -> None:
    """Refuse (403) unless `role` has `permission`."""
    if not role_may(role, permission):
        allowed = " or ".join(sorted(ROLES_FOR[permission]))
        raise Forbidden(
            f"This needs the {allowed} role; you are {role or 'not a member'}.", fields={"role": role or ""}
        )

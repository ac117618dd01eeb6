"""The models of every area, one module per area; import them from here."""

from contracts.models.audit import ActorKind, AuditAction, AuditEntry
from contracts.models.base import AppendOnlyError, AppendOnlyModel, AppendOnlyQuerySet
from contracts.models.billing import ExtendedSupport, StripeEvent
from contracts.models.bugs import BugReport, BugReportEvent, BugStatus
from contracts.models.catalog import (
    Alias,
    AliasMove,
    ChangelogEntry,
    ChangelogKind,
    ModelFamily,
    Snapshot,
    SnapshotStatus,
)
from contracts.models.consent import (
    OPEN_MIGRATION_STATES,
    ContractTerms,
    Migration,
    MigrationOrigin,
    MigrationState,
)
from contracts.models.evals import EvalResult, EvalSuite, GoldenSample, ProcurementBaseline
from contracts.models.gateway import (
    Gateway,
    GatewayReceiptKey,
    PinMapChange,
    PinMapChangeKind,
    UsageBatch,
    UsageHour,
)
from contracts.models.identity import (
    IdentitySettings,
    Invitation,
    OrgDomain,
    ScimGroup,
    ScimToken,
    ScimUser,
    token_hash,
)
from contracts.models.ledger import (
    ConsentExport,
    ConsentRecord,
    ExportStatus,
    LedgerAction,
    LedgerCheckpoint,
    LedgerHead,
)
from contracts.models.operations import LedgerVerification
from contracts.models.pins import Pin, PinChange, UpgradePolicy
from contracts.models.renewal import (
    OPEN_RUN_STATES,
    AuditPack,
    EvalRun,
    EvalRunner,
    EvalRunState,
)
from contracts.models.tenancy import ApiKey, ApiKeyScope, Membership, Organization, Role, UserPreference

__all__ = [
    "OPEN_MIGRATION_STATES",
    "OPEN_RUN_STATES",
    "ActorKind",
    "Alias",
    "AliasMove",
    "ApiKey",
    "ApiKeyScope",
    "AppendOnlyError",
    "AppendOnlyModel",
    "AppendOnlyQuerySet",
    "AuditAction",
    "AuditEntry",
    "AuditPack",
    "BugReport",
    "BugReportEvent",
    "BugStatus",
    "ChangelogEntry",
    "ChangelogKind",
    "ConsentExport",
    "ConsentRecord",
    "ContractTerms",
    "EvalResult",
    "EvalRun",
    "EvalRunState",
    "EvalRunner",
    "EvalSuite",
    "ExportStatus",
    "ExtendedSupport",
    "Gateway",
    "GatewayReceiptKey",
    "GoldenSample",
    "IdentitySettings",
    "Invitation",
    "LedgerAction",
    "LedgerCheckpoint",
    "LedgerHead",
    "LedgerVerification",
    "Membership",
    "Migration",
    "MigrationOrigin",
    "MigrationState",
    "ModelFamily",
    "OrgDomain",
    "Organization",
    "Pin",
    "PinChange",
    "PinMapChange",
    "PinMapChangeKind",
    "ProcurementBaseline",
    "Role",
    "ScimGroup",
    "ScimToken",
    "ScimUser",
    "Snapshot",
    "SnapshotStatus",
    "StripeEvent",
    "UpgradePolicy",
    "UsageBatch",
    "UsageHour",
    "UserPreference",
    "token_hash",
]

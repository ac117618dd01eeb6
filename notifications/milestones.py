"""Milestones: pure functions of dates and contract terms. No database, no clock.

A snapshot on which an organisation is pinned yields: deprecation announced, the contractual notice
date (retirement minus the terms' minimum notice), reminders T-90/T-30/T-7/T-1 that fall inside the notice
period, and retirement day. A migration yields: proposed, deadline approaching, and its outcome
(applied, forced, rolled back, declined; each deferral is planned from its ledger record instead).
The planner asks `due(...)` which of them to send now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

DEFAULT_NOTICE_DAYS = 90
DEFAULT_ESCALATION_DAYS = 7
REMINDER_DAYS = (90, 30, 7, 1)
DEADLINE_WARNING_DAYS = 7

DEPRECATION_ANNOUNCED = "deprecation-announced"
NOTICE_DATE = "notice-date"
RETIREMENT_DAY = "retirement-day"
FORCED_MIGRATION_APPLIED = "forced-migration-applied"
MIGRATION_APPLIED = "migration-applied"
MIGRATION_PROPOSED = "migration-proposed"
DEADLINE_APPROACHING = "deadline-approaching"
STILL_IN_USE = "still-in-use"
# The "still in use" notice: an organisation whose gateways still served it the snapshot in the last
# STILL_IN_USE_LOOKBACK_DAYS, once it is STILL_IN_USE_DAYS or fewer days from retirement.
STILL_IN_USE_DAYS = 7
STILL_IN_USE_LOOKBACK_DAYS = 7
MIGRATION_ROLLED_BACK = "migration-rolled-back"
MIGRATION_DECLINED = "migration-declined"
MIGRATION_DEFERRED = "migration-deferred"
REMINDERS = tuple(f"t-{days}" for days in REMINDER_DAYS)


@dataclass(frozen=True, order=True)
class MilestoneDate:
    at: dt.datetime
    milestone: str


def notice_date(*, retires_at: dt.datetime, min_notice_days: int) -> dt.datetime:
    """The last moment notice of retirement may be given under the terms."""
    return retires_at - dt.timedelta(days=min_notice_days)


def snapshot_milestones(
    *, deprecated_at: dt.datetime | None, retires_at: dt.datetime | None, min_notice_days: int | None
) -> list[MilestoneDate]:
    """Every milestone of one deprecated snapshot, for an organisation with the given notice terms."""
    if deprecated_at is None:
        return []
    notice_days = DEFAULT_NOTICE_DAYS if min_notice_days is None else min_notice_days
    result = [MilestoneDate(deprecated_at, DEPRECATION_ANNOUNCED)]
    if retires_at is None:
        return result
    contractual = notice_date(retires_at=retires_at, min_notice_days=notice_days)
    if contractual >= deprecated_at:
        result.append(MilestoneDate(contractual, NOTICE_DATE))
    for days in REMINDER_DAYS:
        at = retires_at - dt.timedelta(days=days)
        # Only reminders inside the notice period, and never before the announcement itself.
        if days <= notice_days and at >= deprecated_at:
            result.append(MilestoneDate(at, f"t-{days}"))
    result.append(MilestoneDate(retires_at, RETIREMENT_DAY))
    return sorted(result)


def migration_milestones(
    *,
    proposed_at: dt.datetime,
    deadline: dt.datetime | None,
    state: str,
    applied_at: dt.datetime | None,
    decided_at: dt.datetime | None = None,
    rolled_back_at: dt.datetime | None = None,
) -> list[MilestoneDate]:
    """Milestones of one migration: proposed, deadline approaching (while open), and the notice of
    its current outcome (applied, forced, rolled back, declined). A deferral is not among them: a
    migration may be deferred more than once, and each deferral is told by its own notice, planned
    from its ledger record (`notifications.services.notices_plan`).

    An applied migration that was rolled back since yields the rollback, not "applied": a notice
    says what is true when it is planned (and the sender checks again when it sends)."""
    result = [MilestoneDate(proposed_at, MIGRATION_PROPOSED)]
    if deadline is not None and state in ("proposed", "deferred"):
        warn = max(deadline - dt.timedelta(days=DEADLINE_WARNING_DAYS), proposed_at)
        if warn < deadline:
            result.append(MilestoneDate(warn, DEADLINE_APPROACHING))
    if applied_at is not None and state == "forced":
        result.append(MilestoneDate(applied_at, FORCED_MIGRATION_APPLIED))
    elif applied_at is not None and state == "applied":
        result.append(MilestoneDate(applied_at, MIGRATION_APPLIED))
    elif rolled_back_at is not None and state == "rolled-back":
        result.append(MilestoneDate(rolled_back_at, MIGRATION_ROLLED_BACK))
    elif decided_at is not None and state == "declined":
        result.append(MilestoneDate(decided_at, MIGRATION_DECLINED))
    return sorted(result)


COUNTDOWN = frozenset({NOTICE_DATE, *REMINDERS})


def due(
    milestones: Iterable[MilestoneDate], *, now: dt.datetime, catch_up: dt.timedelta
) -> list[MilestoneDate]:
    """The milestones to plan at `now`: reached, not older than `catch_up`, and of the countdown
    (notice date, T-n) only one that no later milestone has overtaken. A reminder whose next
    milestone (a later reminder, or retirement day itself) is already reached is folded into it:
    never "retires tomorrow" after the retirement date."""
    reached = sorted(m for m in milestones if m.at <= now and now - m.at <= catch_up)
    all_reached = sorted(m for m in milestones if m.at <= now)
    stale = {
        m
        for m in reached
        if m.milestone in COUNTDOWN
        and any(
            later > m and (later.milestone in COUNTDOWN or later.milestone == RETIREMENT_DAY)
            for later in all_reached
        )
    }
    return [m for m in reached if m not in stale]


def still_in_use_due_at(*, retires_at: dt.datetime) -> dt.datetime:
    return retires_at - dt.timedelta(days=STILL_IN_USE_DAYS)


def overtaken_by(
    milestone: str, *, at: dt.datetime, milestones: Iterable[MilestoneDate], now: dt.datetime
) -> MilestoneDate | None:
    """The later countdown milestone (or retirement day) already reached at `now` that makes a
    countdown notice due at `at` pointless to send; None when the notice still stands."""
    if milestone not in COUNTDOWN:
        return None
    later = sorted(
        m
        for m in milestones
        if at < m.at <= now and (m.milestone in COUNTDOWN or m.milestone == RETIREMENT_DAY)
    )
    return later[-1] if later else None


def escalation_due_at(*, sent_at: dt.datetime, ack_escalation_days: int | None) -> dt.datetime:
    days = DEFAULT_ESCALATION_DAYS if ack_escalation_days is None else ack_escalation_days
    return sent_at + dt.timedelta(days=days)


def calendar_dates(
    *, deprecated_at: dt.datetime | None, retires_at: dt.datetime | None, min_notice_days: int | None
) -> list[MilestoneDate]:
    """The dates of one pinned snapshot a calendar shows: notice date and retirement."""
    return [
        m
        for m in snapshot_milestones(
            deprecated_at=deprecated_at, retires_at=retires_at, min_notice_days=min_notice_days
        )
        if m.milestone in (NOTICE_DATE, RETIREMENT_DAY)
    ]

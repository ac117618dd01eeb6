"""Milestones: pure functions of dates and contract terms. No database, no clock.

A snapshot on which an organisation is pinned yields: deprecation announced, the contractual notice
date (retirement minus the terms' minimum notice), reminders T-90/T-30/T-7/T-1 that fall inside the notice
period, and retirement day. A migration yields: proposed, deadline approaching, and applied (forced or
consented). The planner asks `due(...)` which of them to send now.
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
) -> list[MilestoneDate]:
    """Milestones of one migration: proposed, deadline approaching (while open), applied."""
    result = [MilestoneDate(proposed_at, MIGRATION_PROPOSED)]
    if deadline is not None and state in ("proposed", "deferred"):
        warn = max(deadline - dt.timedelta(days=DEADLINE_WARNING_DAYS), proposed_at)
        if warn < deadline:
            result.append(MilestoneDate(warn, DEADLINE_APPROACHING))
    if applied_at is not None and state == "forced":
        result.append(MilestoneDate(applied_at, FORCED_MIGRATION_APPLIED))
    elif applied_at is not None and state in ("applied", "rolled-back"):
        result.append(MilestoneDate(applied_at, MIGRATION_APPLIED))
    return sorted(result)


def due(
    milestones: Iterable[MilestoneDate], *, now: dt.datetime, catch_up: dt.timedelta
) -> list[MilestoneDate]:
    """The milestones to plan at `now`: reached, not older than `catch_up`, and of the countdown
    reminders (notice date, T-n) only the latest reached one — a reminder overtaken by a later
    one is not worth sending late."""
    reached = sorted(m for m in milestones if m.at <= now and now - m.at <= catch_up)
    countdown = [m for m in reached if m.milestone == NOTICE_DATE or m.milestone in REMINDERS]
    stale = set(countdown[:-1])
    return [m for m in reached if m not in stale]


def still_in_use_due_at(*, retires_at: dt.datetime) -> dt.datetime:
    return retires_at - dt.timedelta(days=STILL_IN_USE_DAYS)


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

"""Milestones are pure functions of dates and terms."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from notifications import milestones as ms

UTC = dt.UTC
T0 = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)


def names(items):
    return [m.milestone for m in items]


def test_snapshot_with_90_day_terms_yields_announcement_notice_date_reminders_and_retirement():
    result = ms.snapshot_milestones(
        deprecated_at=T0, retires_at=T0 + dt.timedelta(days=120), min_notice_days=90
    )
    assert names(result) == [
        "deprecation-announced",
        "notice-date",
        "t-90",
        "t-30",
        "t-7",
        "t-1",
        "retirement-day",
    ]
    by_name = {m.milestone: m.at for m in result}
    assert by_name["notice-date"] == T0 + dt.timedelta(days=30)
    assert by_name["t-1"] == T0 + dt.timedelta(days=119)


def test_reminders_outside_a_short_notice_period_are_left_out():
    result = ms.snapshot_milestones(
        deprecated_at=T0, retires_at=T0 + dt.timedelta(days=60), min_notice_days=14
    )
    assert names(result) == ["deprecation-announced", "notice-date", "t-7", "t-1", "retirement-day"]


def test_without_accepted_terms_the_default_notice_is_90_days():
    result = ms.snapshot_milestones(
        deprecated_at=T0, retires_at=T0 + dt.timedelta(days=200), min_notice_days=None
    )
    assert {m.milestone: m.at for m in result}["notice-date"] == T0 + dt.timedelta(days=110)


def test_a_snapshot_not_deprecated_has_no_milestones_and_one_without_retirement_only_the_announcement():
    assert ms.snapshot_milestones(deprecated_at=None, retires_at=None, min_notice_days=90) == []
    assert names(ms.snapshot_milestones(deprecated_at=T0, retires_at=None, min_notice_days=90)) == [
        "deprecation-announced"
    ]


def test_migration_milestones_follow_its_state():
    deadline = T0 + dt.timedelta(days=30)
    open_ = ms.migration_milestones(proposed_at=T0, deadline=deadline, state="proposed", applied_at=None)
    assert names(open_) == ["migration-proposed", "deadline-approaching"]
    assert open_[1].at == deadline - dt.timedelta(days=7)
    forced = ms.migration_milestones(proposed_at=T0, deadline=deadline, state="forced", applied_at=deadline)
    assert names(forced) == ["migration-proposed", "forced-migration-applied"]
    applied = ms.migration_milestones(
        proposed_at=T0, deadline=deadline, state="applied", applied_at=T0 + dt.timedelta(days=1)
    )
    assert names(applied) == ["migration-proposed", "migration-applied"]
    # A deferral is planned from its ledger record (one notice per deferral), not from the state.
    deferred = ms.migration_milestones(
        proposed_at=T0,
        deadline=deadline,
        state="deferred",
        applied_at=None,
        decided_at=T0 + dt.timedelta(days=1),
    )
    assert names(deferred) == ["migration-proposed", "deadline-approaching"]


def test_due_keeps_only_the_latest_countdown_reminder_and_drops_what_is_older_than_catch_up():
    dates = ms.snapshot_milestones(
        deprecated_at=T0, retires_at=T0 + dt.timedelta(days=120), min_notice_days=90
    )
    now = T0 + dt.timedelta(days=95)  # past notice date (30) and T-30 (90), before T-7 (113)
    due = ms.due(dates, now=now, catch_up=dt.timedelta(days=365))
    assert names(due) == ["deprecation-announced", "t-30"]
    assert names(ms.due(dates, now=now, catch_up=dt.timedelta(days=10))) == ["t-30"]


def test_escalation_is_due_after_the_terms_days():
    assert ms.escalation_due_at(sent_at=T0, ack_escalation_days=3) == T0 + dt.timedelta(days=3)
    assert ms.escalation_due_at(sent_at=T0, ack_escalation_days=None) == T0 + dt.timedelta(days=7)


@given(
    announce_offset=st.integers(min_value=0, max_value=400),
    lead=st.integers(min_value=0, max_value=500),
    notice_days=st.integers(min_value=0, max_value=365),
)
def test_every_milestone_lies_between_announcement_and_retirement_and_reminders_inside_the_notice_period(
    announce_offset, lead, notice_days
):
    deprecated_at = T0 + dt.timedelta(days=announce_offset)
    retires_at = deprecated_at + dt.timedelta(days=lead)
    result = ms.snapshot_milestones(
        deprecated_at=deprecated_at, retires_at=retires_at, min_notice_days=notice_days
    )
    assert result == sorted(result)
    assert result[0].milestone == "deprecation-announced" and result[-1].milestone == "retirement-day"
    notice_start = retires_at - dt.timedelta(days=notice_days)
    for m in result:
        assert deprecated_at <= m.at <= retires_at
        if m.milestone in ms.REMINDERS:
            assert m.at >= notice_start
    assert len({m.milestone for m in result}) == len(result)


@given(
    lead=st.integers(min_value=1, max_value=400),
    notice_days=st.integers(min_value=1, max_value=365),
    now_offset=st.integers(min_value=-10, max_value=420),
)
def test_due_never_returns_future_milestones_nor_two_countdown_reminders(lead, notice_days, now_offset):
    dates = ms.snapshot_milestones(
        deprecated_at=T0, retires_at=T0 + dt.timedelta(days=lead), min_notice_days=notice_days
    )
    now = T0 + dt.timedelta(days=now_offset)
    due = ms.due(dates, now=now, catch_up=dt.timedelta(days=1000))
    assert all(m.at <= now for m in due)
    assert sum(1 for m in due if m.milestone in ms.REMINDERS or m.milestone == ms.NOTICE_DATE) <= 1

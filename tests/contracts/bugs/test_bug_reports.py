from __future__ import annotations

import datetime as dt

import pytest
from django.core import mail
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts.bugs import selectors
from contracts.bugs.receipts import receipt_issue
from contracts.bugs.services import bug_report_file, bug_report_transition
from contracts.errors import ApplicationError, Conflict, Forbidden
from contracts.models import BugReport, BugReportEvent, BugStatus, Snapshot, SnapshotStatus
from contracts.pins import services as catalog_services
from tests import factories as f
from tests.contracts.bug_support import POLICY, accept_terms

pytestmark = pytest.mark.django_db


def file(world, **overrides):
    values = {
        "org": world.org,
        "reporter": world.admin,
        "alias": "v1-chat",
        "observed_at": f.days(-10),
        "prompt": "What is 2+2?",
        "output": "5",
        "expected": "4",
    }
    values.update(overrides)
    return bug_report_file(**values)


def nothing_stored() -> bool:
    return not BugReport.objects.exists() and not BugReportEvent.objects.exists()


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------


def test_report_resolves_to_the_snapshot_pinned_at_the_observed_instant_not_todays(world):
    # acme is pinned to `old` since day -150; move the pin to `current` today.
    catalog_services.pin_set(org=world.org, alias=world.alias, snapshot=world.current, reason="upgrade")
    report = file(world, observed_at=f.days(-10))
    assert report.snapshot == world.old
    assert report.resolved_by == "history"
    assert report.status == BugStatus.NEW
    assert [e.status for e in report.events.all()] == [BugStatus.NEW]


def test_report_before_the_pin_existed_follows_the_alias_history(world):
    # Before acme's pin (day -150) the alias default answers: `old` until day -90.
    assert file(world, observed_at=f.days(-160)).snapshot == world.old
    lonely = f.OrganizationFactory(slug="lonely")
    assert file(world, org=lonely, observed_at=f.days(-60)).snapshot == world.current


def test_receipt_overrides_the_history_guess_and_is_recorded(world, signing_keys):
    # History says `old` for acme; the receipt says `current` answered this response.
    receipt = receipt_issue(
        org=world.org, alias="v1-chat", snapshot=world.current, response_id="resp_9", at=f.days(-10)
    )
    report = file(world, alias="", observed_at=None, receipt=receipt)
    assert report.snapshot == world.current
    assert report.resolved_by == "receipt"
    assert report.response_id == "resp_9"
    assert report.alias == world.alias
    assert report.receipt == receipt
    assert abs(report.observed_at - f.days(-10)) < dt.timedelta(seconds=5)


def test_receipt_for_another_organisation_is_refused_and_nothing_is_stored(world, signing_keys):
    receipt = receipt_issue(
        org=world.other_org, alias="v1-chat", snapshot=world.current, response_id="r", at=f.days(-1)
    )
    with pytest.raises(ApplicationError) as exc:
        file(world, receipt=receipt, observed_at=None)
    assert exc.value.status_code == 400
    assert "another organisation" in exc.value.message
    assert nothing_stored()


def test_altered_receipt_is_refused_and_nothing_is_stored(world, signing_keys):
    receipt = receipt_issue(
        org=world.org, alias="v1-chat", snapshot=world.old, response_id="r", at=f.days(-1)
    )
    receipt["snapshot"] = world.current.name
    with pytest.raises(ApplicationError):
        file(world, receipt=receipt, observed_at=None)
    assert nothing_stored()


def test_receipt_contradicting_the_typed_alias_or_response_id_is_refused(world, signing_keys):
    receipt = receipt_issue(
        org=world.org, alias="v1-chat", snapshot=world.old, response_id="r1", at=f.days(-1)
    )
    lonely_alias = f.make_alias(name="chat-latest", target=world.current)
    with pytest.raises(ApplicationError) as exc:
        file(world, alias=lonely_alias.name, receipt=receipt, observed_at=None)
    assert set(exc.value.fields) == {"alias"}
    with pytest.raises(ApplicationError) as exc:
        file(world, response_id="r2", receipt=receipt, observed_at=None)
    assert set(exc.value.fields) == {"response_id"}
    with pytest.raises(ApplicationError) as exc:
        file(world, receipt=receipt, observed_at=f.days(-3))
    assert set(exc.value.fields) == {"observed_at"}
    assert nothing_stored()


def test_observed_time_in_the_future_is_refused_saying_so(world):
    with pytest.raises(ApplicationError) as exc:
        file(world, observed_at=f.days(1))
    assert "in the future" in exc.value.message
    assert set(exc.value.fields) == {"observed_at"}
    assert nothing_stored()


def test_observed_time_before_the_alias_existed_is_refused_saying_so(world):
    with pytest.raises(ApplicationError) as exc:
        file(world, observed_at=f.days(-400))
    assert exc.value.status_code == 400
    assert "before alias 'v1-chat' existed" in exc.value.message
    assert "observed_at" in exc.value.fields
    assert nothing_stored()


def test_naive_observed_time_is_refused(world):
    with pytest.raises(ApplicationError) as exc:
        file(world, observed_at=dt.datetime(2025, 9, 1, 12, 0))
    assert "time zone" in exc.value.message
    assert nothing_stored()


def test_unknown_alias_and_missing_fields_are_refused_naming_them(world):
    with pytest.raises(ApplicationError) as exc:
        file(world, alias="no-such-alias")
    assert set(exc.value.fields) == {"alias"}
    with pytest.raises(ApplicationError) as exc:
        file(world, alias="", observed_at=None)
    assert set(exc.value.fields) == {"alias", "observed_at"}
    assert nothing_stored()


# --------------------------------------------------------------------------------------------
# Reproducibility, routing, e-mail
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dates, expected",
    [
        ({}, selectors.REPRODUCIBLE_NOW),
        ({"deprecated_at": -5}, selectors.REPRODUCIBLE_NOW),
        ({"deprecated_at": -50, "retires_at": -5, "retention_until": 300}, selectors.REPRODUCIBLE_ON_REQUEST),
        ({"deprecated_at": -50, "retires_at": -5}, selectors.REPRODUCIBLE_ON_REQUEST),
        ({"deprecated_at": -500, "retires_at": -400, "retention_until": -5}, selectors.GONE),
    ],
)
def test_reproducibility_follows_the_snapshot_lifecycle(dates, expected):
    snapshot = f.SnapshotFactory.build(**{name: f.days(days) for name, days in dates.items()})
    assert selectors.reproducibility(snapshot) == expected


def test_report_is_routed_to_the_owning_team_which_gets_an_email(world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = file(world)
    assert report.owning_team == world.family.owning_team
    assert [m.to for m in mail.outbox] == [[world.family.owning_team_email]]
    message = mail.outbox[0]
    assert f"bug #{report.pk}" in message.subject
    assert world.old.name in message.body and "/staff/bugs/" in message.body


def test_view_shows_the_accepted_terms_policy_word_for_word(world):
    terms = accept_terms(world.org)
    report = file(world)
    view = selectors.bug_report_view(org=world.org, report_id=report.pk)
    assert view.terms == terms
    assert view.policy_text == POLICY


def test_another_organisation_cannot_read_the_report(world):
    report = file(world)
    from contracts.errors import NotFound

    with pytest.raises(NotFound):
        selectors.bug_report_get(org=world.other_org, report_id=report.pk)


# --------------------------------------------------------------------------------------------
# Workflow
# --------------------------------------------------------------------------------------------


def retire(snapshot: Snapshot, *, purged: bool = False) -> None:
    snapshot.deprecated_at = f.days(-60)
    snapshot.retires_at = f.days(-30)
    snapshot.retention_until = f.days(-1) if purged else f.days(300)
    snapshot.save(update_fields=["deprecated_at", "retires_at", "retention_until"])


def test_full_workflow_emails_the_reporter_on_every_change(world, staff, django_capture_on_commit_callbacks):
    report = file(world)
    newer = f.SnapshotFactory(family=world.family, name="chat-2025-09-01", released_at=f.days(-1))
    with django_capture_on_commit_callbacks(execute=True):
        bug_report_transition(report=report, status=BugStatus.REPRODUCING, acting_user=staff)
        bug_report_transition(
            report=report, status=BugStatus.REPRODUCED, acting_user=staff, note="Seen on replay."
        )
        bug_report_transition(report=report, status=BugStatus.FIXED, acting_user=staff, fixed_in=newer)
        bug_report_transition(report=report, status=BugStatus.CLOSED, acting_user=staff)
    report.refresh_from_db()
    assert report.status == BugStatus.CLOSED and report.fixed_in == newer
    assert [e.status for e in report.events.all()] == ["new", "reproducing", "reproduced", "fixed", "closed"]
    assert [m.to for m in mail.outbox] == [[world.admin.email]] * 4
    assert "Fixed in:     chat-2025-09-01" in mail.outbox[2].body
    assert "Seen on replay." in mail.outbox[1].body


def test_cannot_reproduce_answers_with_the_policy_text_word_for_word(
    world, staff, django_capture_on_commit_callbacks
):
    accept_terms(world.org)
    retire(world.old, purged=True)
    report = file(world)
    with django_capture_on_commit_callbacks(execute=True):
        bug_report_transition(report=report, status=BugStatus.CANNOT_REPRODUCE, acting_user=staff)
    event = report.events.last()
    assert event.status == BugStatus.CANNOT_REPRODUCE
    assert event.note == POLICY
    assert POLICY in mail.outbox[-1].body


def test_cannot_reproduce_takes_no_free_text(world, staff):
    accept_terms(world.org)
    retire(world.old, purged=True)
    report = file(world)
    with pytest.raises(ApplicationError) as exc:
        bug_report_transition(
            report=report, status=BugStatus.CANNOT_REPRODUCE, acting_user=staff, note="Sorry, gone."
        )
    assert set(exc.value.fields) == {"note"}
    assert BugReport.objects.get(pk=report.pk).status == BugStatus.NEW


def test_cannot_reproduce_is_refused_while_the_artifact_is_served_or_retained(world, staff):
    accept_terms(world.org)
    report = file(world)
    with pytest.raises(Conflict, match="can still be run"):
        bug_report_transition(report=report, status=BugStatus.CANNOT_REPRODUCE, acting_user=staff)
    retire(world.old)
    with pytest.raises(Conflict, match="restore it to reproduce"):
        bug_report_transition(report=report, status=BugStatus.CANNOT_REPRODUCE, acting_user=staff)
    assert report.events.count() == 1


def test_cannot_reproduce_without_accepted_terms_is_refused(world, staff):
    retire(world.old, purged=True)
    report = file(world)
    with pytest.raises(Conflict, match="no contract terms"):
        bug_report_transition(report=report, status=BugStatus.CANNOT_REPRODUCE, acting_user=staff)


@pytest.mark.parametrize(
    "path, refused",
    [
        ([], BugStatus.CLOSED),
        ([], BugStatus.FIXED),
        ([BugStatus.REPRODUCING], BugStatus.NEW),
        ([BugStatus.REPRODUCING, BugStatus.REPRODUCED, BugStatus.CLOSED], BugStatus.REPRODUCING),
    ],
)
def test_transitions_outside_the_workflow_are_refused_and_write_nothing(world, staff, path, refused):
    report = file(world)
    for status in path:
        bug_report_transition(report=report, status=status, acting_user=staff)
    events = report.events.count()
    with pytest.raises(Conflict):
        bug_report_transition(report=report, status=refused, acting_user=staff)
    assert report.events.count() == events


def test_fixed_needs_a_published_snapshot_of_the_same_family(world, staff):
    report = file(world)
    bug_report_transition(report=report, status=BugStatus.REPRODUCING, acting_user=staff)
    with pytest.raises(ApplicationError) as exc:
        bug_report_transition(report=report, status=BugStatus.FIXED, acting_user=staff)
    assert set(exc.value.fields) == {"fixed_in"}
    alien = f.SnapshotFactory(name="embed-2025-01-01")
    with pytest.raises(ApplicationError):
        bug_report_transition(report=report, status=BugStatus.FIXED, acting_user=staff, fixed_in=alien)
    assert BugReport.objects.get(pk=report.pk).status == BugStatus.REPRODUCING


def test_customers_cannot_triage(world):
    report = file(world)
    with pytest.raises(Forbidden):
        bug_report_transition(report=report, status=BugStatus.REPRODUCING, acting_user=world.admin)


# --------------------------------------------------------------------------------------------
# Staff queue
# --------------------------------------------------------------------------------------------


def test_triage_queue_filters_by_family_snapshot_status_and_age(world, staff):
    embed = f.FamilyFactory(slug="embed", owning_team="Retrieval Team")
    vector = f.SnapshotFactory(family=embed, name="embed-2025-01-01", released_at=f.days(-100))
    f.make_alias(name="v1-embed", target=vector, at=f.days(-99))
    retire(world.old)
    chat_old = file(world, observed_at=f.days(-100))
    chat_new = file(world, alias="v1-chat", org=world.other_org, observed_at=f.days(-1))
    embed_report = file(world, alias="v1-embed", observed_at=f.days(-2))
    BugReport.objects.filter(pk=chat_old.pk).update(created_at=f.days(-10))

    def ids(**filters):
        return [r.pk for r in selectors.bug_triage_list(**filters)]

    assert ids() == [chat_old.pk, chat_new.pk, embed_report.pk]
    assert ids(family="embed") == [embed_report.pk]
    assert embed_report.owning_team == "Retrieval Team"
    assert ids(snapshot_status=SnapshotStatus.RETIRED) == [chat_old.pk]
    assert ids(snapshot_status=SnapshotStatus.ACTIVE) == [chat_new.pk, embed_report.pk]
    assert ids(age="7to30d") == [chat_old.pk]
    assert ids(age="lt1d") == [chat_new.pk, embed_report.pk]


offsets = st.one_of(st.none(), st.integers(min_value=-400, max_value=400))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(released=st.integers(-400, 400), deprecated=offsets, retires=offsets, retention=offsets)
def test_database_status_filter_agrees_with_snapshot_status_at(db, released, deprecated, retires, retention):
    # The model's constraints: retirement after deprecation, retention after retirement.
    if retires is not None and (deprecated is None or retires < deprecated):
        retires = None
    if retention is not None and (retires is None or retention < retires):
        retention = None
    now = f.days(0)
    snapshot = f.SnapshotFactory(
        released_at=now + dt.timedelta(days=released),
        deprecated_at=None if deprecated is None else now + dt.timedelta(days=deprecated),
        retires_at=None if retires is None else now + dt.timedelta(days=retires),
        retention_until=None if retention is None else now + dt.timedelta(days=retention),
    )
    matching = [
        status
        for status in SnapshotStatus.values
        if Snapshot.objects.filter(selectors.snapshot_status_q(status, at=now), pk=snapshot.pk).exists()
    ]
    assert matching == [snapshot.status_at(now)]
    snapshot.delete()

"""A person's time zone: the service that sets it, the selector that reads it, and the one filter
every template shows instants with."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest
from django.utils import timezone

from contracts.errors import ApplicationError
from contracts.models import UserPreference
from contracts.templatetags.instants import instant
from contracts.tenancy.selectors import time_zone_choices, user_time_zone
from contracts.tenancy.services import user_preference_update
from tests import factories as f

MOMENT = dt.datetime(2026, 12, 2, 9, 30, 59, 123456, tzinfo=dt.UTC)


def test_instant_is_to_the_minute_with_the_zone_named_in_utc_by_default():
    assert instant(MOMENT) == "2 Dec 2026, 09:30 UTC"


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("Europe/Paris", "2 Dec 2026, 10:30 CET"),
        ("America/New_York", "2 Dec 2026, 04:30 EST"),
        ("Asia/Kolkata", "2 Dec 2026, 15:00 IST"),
        ("Asia/Dubai", "2 Dec 2026, 13:30 UTC+04"),  # a zone without an abbreviation
        ("Pacific/Auckland", "2 Dec 2026, 22:30 NZDT"),
    ],
)
def test_instant_follows_the_active_time_zone(zone, expected):
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        assert instant(MOMENT) == expected


def test_instant_names_summer_time_and_crosses_the_date_line():
    with timezone.override(zoneinfo.ZoneInfo("Europe/Paris")):
        assert instant(dt.datetime(2026, 7, 1, 22, 5, tzinfo=dt.UTC)) == "2 Jul 2026, 00:05 CEST"


def test_instant_reads_iso_text_dates_and_nothing():
    assert instant("2026-12-02T09:30:00Z") == "2 Dec 2026, 09:30 UTC"
    assert instant(dt.date(2026, 12, 2)) == "2 Dec 2026"
    assert instant(None) == ""
    assert instant("not a date") == "not a date"


def test_choices_start_with_utc_and_leave_out_legacy_aliases():
    zones = time_zone_choices()
    assert zones[0] == "UTC"
    assert {"Europe/Paris", "America/Sao_Paulo", "Asia/Kolkata"} <= set(zones)
    assert not {"US/Eastern", "GB", "Etc/GMT+3", "localtime"} & set(zones)


@pytest.mark.django_db
def test_a_person_reads_utc_until_they_choose_a_zone():
    user = f.UserFactory()
    assert user_time_zone(user=user) == "UTC"
    user_preference_update(acting_user=user, time_zone="Europe/Paris")
    assert user_time_zone(user=user) == "Europe/Paris"
    user_preference_update(acting_user=user, time_zone="UTC")
    assert UserPreference.objects.get(user=user).time_zone == "UTC"


@pytest.mark.django_db
@pytest.mark.parametrize("typed", ["Mars/Olympus", "", "US/Eastern", "Europe/Paris; DROP", "x" * 500])
def test_an_unknown_zone_is_refused_naming_the_field_and_writes_nothing(typed):
    user = f.UserFactory()
    user_preference_update(acting_user=user, time_zone="Asia/Tokyo")
    with pytest.raises(ApplicationError) as refused:
        user_preference_update(acting_user=user, time_zone=typed)
    assert "time_zone" in refused.value.fields
    assert "choose one from the list" in refused.value.message
    assert user_time_zone(user=user) == "Asia/Tokyo"

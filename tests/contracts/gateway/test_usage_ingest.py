"""POST /api/v1/gateway/usage/: hourly rollups, idempotent batch ids, whole-batch refusal naming the row."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from contracts.models import UsageBatch, UsageHour

URL = "/api/v1/gateway/usage/"


def hour(offset: int = 0) -> str:
    start = timezone.now().replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=offset)
    return start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:00:00Z")


def row(**changes):
    return {
        "org": "acme",
        "alias": "v1-chat",
        "snapshot": "chat-2025-01-01",
        "hour": hour(-1),
        "requests": 5,
        **changes,
    }


def test_batches_add_up_into_hourly_rollups_and_a_replay_counts_nothing(api, world, gateway):
    first = api.post(
        URL, {"batch_id": "b1", "rows": [row(), row(requests=3), row(hour=hour(0))]}, key=gateway.raw_key
    )
    assert first.status_code == 200, first.content
    assert first.json() == {"batch_id": "b1", "rows": 3, "duplicate": False}
    second = api.post(URL, {"batch_id": "b2", "rows": [row(requests=10)]}, key=gateway.raw_key)
    assert second.json()["duplicate"] is False
    replay = api.post(URL, {"batch_id": "b1", "rows": [row(requests=1000)]}, key=gateway.raw_key)
    assert replay.status_code == 200 and replay.json()["duplicate"] is True
    totals = {u.hour.strftime("%H"): u.requests for u in UsageHour.objects.all()}
    assert sorted(totals.values()) == [5, 18]
    assert UsageBatch.objects.count() == 2


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ({"org": "nobody"}, "rows[1].org", "Unknown organisation"),
        ({"alias": "v9-none"}, "rows[1].alias", "Unknown alias"),
        ({"snapshot": "chat-1999"}, "rows[1].snapshot", "Unknown snapshot"),
        ({"requests": -1}, "rows[1].requests", "negative"),
        ({"hour": hour(2)}, "rows[1].hour", "ahead"),
        ({"hour": "2026-12-02T08:30:00Z"}, "rows[1].hour", "start of a UTC hour"),
        ({"requests": "many"}, "rows[1].requests", "integer"),
    ],
)
def test_a_bad_row_refuses_the_whole_batch_naming_it_and_stores_nothing(
    api, world, gateway, bad, field, words
):
    response = api.post(URL, {"batch_id": "bad", "rows": [row(), row(**bad)]}, key=gateway.raw_key)
    assert response.status_code == 400
    error = response.json()["error"]
    assert field in error["fields"] and words in error["fields"][field]
    assert UsageHour.objects.count() == 0 and UsageBatch.objects.count() == 0
    # The refused batch id stays free: the corrected batch is accepted under it.
    assert (
        api.post(URL, {"batch_id": "bad", "rows": [row()]}, key=gateway.raw_key).json()["duplicate"] is False
    )


def test_batch_shape_errors_name_the_field(api, world, gateway):
    assert "batch_id" in api.post(URL, {"rows": [row()]}, key=gateway.raw_key).json()["error"]["fields"]
    too_long = api.post(URL, {"batch_id": "x" * 65, "rows": [row()]}, key=gateway.raw_key)
    assert too_long.status_code == 400 and "batch_id" in too_long.json()["error"]["fields"]
    assert (
        "rows" in api.post(URL, {"batch_id": "e", "rows": []}, key=gateway.raw_key).json()["error"]["fields"]
    )


def test_an_hour_exactly_one_hour_ahead_is_accepted(api, world, gateway):
    response = api.post(URL, {"batch_id": "ahead", "rows": [row(hour=hour(1))]}, key=gateway.raw_key)
    assert response.status_code == 200, response.content

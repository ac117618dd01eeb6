"""/healthz, /readyz and /metrics: what they say, and to whom."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import socket

import pytest
import structlog
from django.utils import timezone

from contracts.gateway.changelog import pin_map_revision
from contracts.gateway.services import gateway_create
from contracts.ledger import monitoring
from contracts.models import ConsentExport, ExportStatus, Migration, MigrationState
from contracts.pins.services import pin_set
from notifications.models import (
    Channel,
    DeliveryStatus,
    Milestone,
    Notice,
    NoticeStatus,
    WebhookDelivery,
    WebhookEndpoint,
)
from tests.contracts.ledger_helpers import append_records, propose, tampering

pytestmark = pytest.mark.django_db

OUTSIDER = {"REMOTE_ADDR": "203.0.113.9"}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition, by name and labels (exact label set not needed)."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name}{labels}")


def notice(world, *, channel=Channel.EMAIL, status=NoticeStatus.PENDING, due_minutes_ago=0, key="n"):
    return Notice.objects.create(
        organization=world.org,
        milestone=Milestone.ADHOC,
        dedupe_key=key,
        channel=channel,
        status=status,
        due_at=timezone.now() - timezone.timedelta(minutes=due_minutes_ago),
    )


def test_healthz_answers_without_touching_anything(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz", **OUTSIDER)
    assert response.status_code == 200 and response.json() == {"ok": True}


def test_readyz_is_ready_and_shows_details_to_loopback(client, world):
    notice(world, due_minutes_ago=5)
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "cache", "broker", "notices"}
    assert all(check["status"] == "ok" for check in body["checks"].values())
    assert 299 <= body["checks"]["notices"]["oldest_due_age_seconds"] <= 400
    assert response["Cache-Control"].startswith("max-age=0")


def test_readyz_tells_an_outsider_up_or_down_per_check_and_nothing_else(client, world):
    notice(world, due_minutes_ago=5)
    response = client.get("/readyz", **OUTSIDER)
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "cache": "ok", "broker": "ok", "notices": "ok"},
    }


def test_redis_away_degrades_readiness_and_fails_it_only_when_the_cache_is_required(client, settings):
    port = closed_port()
    settings.CACHES = {
        **settings.CACHES,
        "default": {
            "BACKEND": "contracts.cache.ReusedClientRedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5},
        },
    }
    degraded = client.get("/readyz", **OUTSIDER)
    assert degraded.status_code == 200
    assert degraded.json()["checks"] == {
        "database": "ok",
        "cache": "degraded",
        "broker": "ok",
        "notices": "ok",
    }
    settings.READYZ_REQUIRED = ["database", "cache"]
    outsider = client.get("/readyz", **OUTSIDER)
    assert outsider.status_code == 503 and outsider.json()["checks"]["cache"] == "failing"
    inside = client.get("/readyz")
    assert inside.status_code == 503
    assert inside.json()["checks"]["cache"] == {
        "status": "failing", "required": True, "ms": inside.json()["checks"]["cache"]["ms"],
        "error": inside.json()["checks"]["cache"]["error"],
    }  # fmt: skip
    for response in (degraded, outsider, inside):
        assert str(port) not in response.content.decode() and "Traceback" not in response.content.decode()


def test_a_stale_notice_backlog_degrades_readiness_and_fails_it_only_when_required(client, world, settings):
    settings.READYZ_NOTICE_MAX_AGE_SECONDS = 600
    notice(world, due_minutes_ago=30)
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["notices"]["status"] == "degraded"
    assert response.json()["checks"]["notices"]["oldest_due_age_seconds"] >= 1800
    settings.READYZ_REQUIRED = ["database", "notices"]
    response = client.get("/readyz", **OUTSIDER)
    assert response.status_code == 503 and response.json()["checks"]["notices"] == "failing"


def test_metrics_are_open_to_loopback_only_without_a_token(client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", **OUTSIDER).status_code == 403
    # Behind a proxy the settings do not know about, every caller would look like loopback.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_with_a_token_metrics_answer_only_the_bearer_of_it(client, settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    denied = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token-and-more", **OUTSIDER)
    assert denied.status_code == 403 and b"vcp_" not in denied.content
    allowed = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token", **OUTSIDER)
    assert allowed.status_code == 200
    assert allowed["Content-Type"].startswith("text/plain; version=")


def test_metrics_count_requests_and_latencies_per_view(client, world):
    client.force_login(world.admin)
    text = client.get("/metrics").content.decode()
    before = 0.0
    with contextlib.suppress(AssertionError):  # no sample before this view's first request
        before = metric(
            text, "django_http_requests_latency_seconds_by_view_method_count", view="portal:dashboard"
        )
    for _ in range(3):
        assert client.get("/o/acme/").status_code == 200
    text = client.get("/metrics").content.decode()
    count = "django_http_requests_latency_seconds_by_view_method_count"
    assert metric(text, count, view="portal:dashboard", method="GET") == before + 3
    assert (
        metric(
            text,
            "django_http_responses_total_by_status_view_method_total",
            view="portal:dashboard",
            status="200",
        )
        >= 3
    )


def test_metrics_report_the_product_figures(client, world, settings):
    notice(world, channel=Channel.EMAIL, due_minutes_ago=10, key="a")
    notice(world, channel=Channel.EMAIL, status=NoticeStatus.FAILED, key="b")
    notice(world, channel=Channel.WEBHOOK, due_minutes_ago=-60, key="c")  # pending, not due yet
    endpoint = WebhookEndpoint.objects.create(
        organization=world.org, url="https://hooks.example/x?t=secret", secret="whsec_x"
    )
    for i, (status, attempts) in enumerate(
        [(DeliveryStatus.FAILED, 6), (DeliveryStatus.PENDING, 2), (DeliveryStatus.SUCCEEDED, 1)]
    ):
        WebhookDelivery.objects.create(
            endpoint=endpoint, event_type="x", msg_id=f"m{i}", payload={}, status=status,
            attempts=attempts, last_attempt_at=timezone.now(),
        )  # fmt: skip
    Migration.objects.filter(pk=propose(world).pk).update(state=MigrationState.FORCED)
    propose(world)
    ConsentExport.objects.create(
        organization=world.org, format="pdf", status=ExportStatus.PENDING, filters={}
    )
    records = append_records(world.org, 2)
    with tampering() as cursor:
        cursor.execute("UPDATE contracts_consentrecord SET actor_email = 'x' WHERE id = %s", [records[0].pk])
    monitoring.ledger_verify_all()

    text = client.get("/metrics").content.decode()
    assert metric(text, "vcp_product_metrics_up") == 1
    assert metric(text, "vcp_notices_pending", channel="email") == 1
    assert metric(text, "vcp_notices_pending", channel="webhook") == 1
    assert metric(text, "vcp_notices_failed", channel="email") == 1
    assert 590 <= metric(text, "vcp_notices_oldest_due_age_seconds", channel="email") <= 700
    assert metric(text, "vcp_notices_oldest_due_age_seconds", channel="webhook") == 0
    assert (
        metric(
            text,
            "vcp_webhook_deliveries_failing",
            endpoint=str(endpoint.pk),
            organization="acme",
            state="failed",
        )
        == 1
    )
    assert metric(text, "vcp_webhook_deliveries_failing", endpoint=str(endpoint.pk), state="retrying") == 1
    assert "secret" not in text and "hooks.example" not in text
    assert metric(text, "vcp_migrations_open", state="proposed") == 1
    assert metric(text, "vcp_migrations_forced_total") == 1
    assert metric(text, "vcp_exports_queued", format="pdf") == 1
    assert metric(text, "vcp_ledger_verification_ok", organization="acme") == 0
    assert metric(text, "vcp_ledger_verification_ok", organization="globex") == 1
    assert (
        abs(
            metric(text, "vcp_ledger_verification_last_run_timestamp_seconds", organization="acme")
            - timezone.now().timestamp()
        )
        < 60
    )


def test_every_response_carries_a_request_id_and_a_sane_upstream_one_is_kept(client):
    kept = client.get("/healthz", HTTP_X_REQUEST_ID="edge-4f1c2a9b")
    assert kept["X-Request-ID"] == "edge-4f1c2a9b"
    fresh = client.get("/healthz")
    replaced = client.get("/healthz", HTTP_X_REQUEST_ID='x"\n{"level":"critical"}' + "a" * 500)
    for response in (fresh, replaced):
        assert re.fullmatch(r"[0-9a-f-]{36}", response["X-Request-ID"])
    assert fresh["X-Request-ID"] != replaced["X-Request-ID"]


def test_json_log_lines_of_a_request_carry_its_request_id(client, world, settings):
    assert settings.LOG_FORMAT == "json"
    handler = next(
        h
        for h in logging.getLogger().handlers
        if isinstance(h.formatter, structlog.stdlib.ProcessorFormatter)
    )
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        client.force_login(world.admin)
        client.get("/o/acme/", HTTP_X_REQUEST_ID="trace-0a1b2c3d")
        logging.getLogger("contracts.test").warning("plain %s logging", "stdlib")
    finally:
        handler.setStream(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == "trace-0a1b2c3d"]
    assert {line["event"] for line in mine} >= {"request_started", "request_finished"}
    finished = next(line for line in mine if line["event"] == "request_finished")
    assert finished["code"] == 200 and finished["level"] == "info" and finished["timestamp"].endswith("Z")
    assert lines[-1]["event"] == "plain stdlib logging" and lines[-1]["logger"] == "contracts.test"


def test_metrics_report_the_pin_map_revision_and_the_gateways_that_poll_it(client, world):
    _seen, seen_key = gateway_create(name="edge-1")
    gateway_create(name="edge-idle")
    pin_set(org=world.org, alias=world.alias, snapshot=world.current, reason="test")
    answer = client.get("/api/v1/gateway/pin-map/", HTTP_AUTHORIZATION=f"Bearer {seen_key}")
    assert answer.status_code == 200

    text = client.get("/metrics").content.decode()
    assert pin_map_revision() > 0
    assert metric(text, "vcp_pin_map_revision") == pin_map_revision() == answer.json()["revision"]
    assert metric(text, "vcp_gateways_connected") == 1

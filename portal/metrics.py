"""/metrics: who may read it, and the product's own figures, read from the database at scrape time.

Request rates and latencies per view come from django-prometheus's middleware. The product
figures below are computed by one collector when Prometheus scrapes, from the database, so they
are the same whichever process answers and need nothing shared between gunicorn workers. With
PROMETHEUS_MULTIPROC_DIR set (gunicorn with several workers), the per-process request metrics are
merged from that folder by prometheus-client's multiprocess collector (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
import os
from collections.abc import Iterator

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from contracts.gateway.changelog import pin_map_revision
from contracts.models import (
    OPEN_MIGRATION_STATES,
    ConsentExport,
    ExportStatus,
    Gateway,
    LedgerVerification,
    Migration,
    MigrationState,
)
from contracts.tenancy.auth import client_ip
from notifications.selectors import notice_backlog, webhook_failing_by_endpoint

log = logging.getLogger(__name__)

WEBHOOK_FAILURE_WINDOW = dt.timedelta(hours=24)


def metrics_allowed(request: HttpRequest) -> bool:
    """With METRICS_TOKEN set: the bearer token, nothing else. Without: loopback callers only, and
    not through a proxy the settings do not know about (it would make every caller loopback)."""
    token = settings.METRICS_TOKEN
    if token:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode())
    if "HTTP_X_FORWARDED_FOR" in request.META and not settings.TRUSTED_PROXIES:
        return False
    try:
        return ipaddress.ip_address(client_ip(request) or "").is_loopback
    except ValueError:
        return False


class ProductCollector:
    """Notices, webhooks, migrations, exports, the data plane and ledger verification."""

    def describe(self) -> list[Metric]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("vcp_product_metrics_up", "1 when the product figures below could be read")
        try:
            metrics = list(self._collect())
        except Exception:  # the database is away: say so instead of failing the whole scrape
            log.exception("product metrics unavailable")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _collect(self) -> Iterator[Metric]:
        now = timezone.now()
        pending = GaugeMetricFamily("vcp_notices_pending", "Notices not yet sent", labels=["channel"])
        failed = GaugeMetricFamily("vcp_notices_failed", "Notices given up on", labels=["channel"])
        oldest = GaugeMetricFamily(
            "vcp_notices_oldest_due_age_seconds",
            "How long the oldest due, unsent notice has waited (0: none due)",
            labels=["channel"],
        )
        for row in notice_backlog(at=now):
            pending.add_metric([row.channel], row.pending)
            failed.add_metric([row.channel], row.failed)
            oldest.add_metric([row.channel], row.oldest_due_age_seconds)
        yield from (pending, failed, oldest)

        webhooks = GaugeMetricFamily(
            "vcp_webhook_deliveries_failing",
            "Webhook deliveries per endpoint: failed (given up, last 24 h) or retrying after a failure",
            labels=["endpoint", "organization", "state"],
        )
        for row in webhook_failing_by_endpoint(since=now - WEBHOOK_FAILURE_WINDOW):
            labels = [str(row["endpoint_id"]), row["endpoint__organization__slug"]]
            webhooks.add_metric([*labels, "failed"], row["failed"])
            webhooks.add_metric([*labels, "retrying"], row["retrying"])
        yield webhooks

        counts = dict(Migration.objects.values_list("state").annotate(n=Count("id")).order_by())
        open_ = GaugeMetricFamily("vcp_migrations_open", "Migrations awaiting a decision", labels=["state"])
        for state in OPEN_MIGRATION_STATES:
            open_.add_metric([state.value], counts.get(state.value, 0))
        yield open_
        forced = CounterMetricFamily("vcp_migrations_forced", "Migrations forced at retirement")
        forced.add_metric([], counts.get(MigrationState.FORCED.value, 0))
        yield forced

        exports = GaugeMetricFamily(
            "vcp_exports_queued", "Consent exports pending or being built", labels=["format"]
        )
        queued = dict(
            ConsentExport.objects.filter(status__in=[ExportStatus.PENDING, ExportStatus.RUNNING])
            .values_list("format")
            .annotate(n=Count("id"))
            .order_by()
        )
        for fmt in sorted({"pdf", "bundle", *queued}):
            exports.add_metric([fmt], queued.get(fmt, 0))
        yield exports

        yield from _data_plane(now)

        ok = GaugeMetricFamily(
            "vcp_ledger_verification_ok",
            "1 when the organisation's ledger verified at the last daily run, 0 when it did not",
            labels=["organization"],
        )
        last = GaugeMetricFamily(
            "vcp_ledger_verification_last_run_timestamp_seconds",
            "When the organisation's ledger was last verified (Unix time)",
            labels=["organization"],
        )
        for slug, intact, checked_at in LedgerVerification.objects.values_list(
            "organization__slug", "intact", "checked_at"
        ).order_by("organization__slug"):
            ok.add_metric([slug], 1 if intact else 0)
            last.add_metric([slug], checked_at.timestamp())
        yield from (ok, last)


def _data_plane(now: dt.datetime) -> Iterator[Metric]:
    """Pin-map revision and connected gateways: the revision is the id of the last change-log entry; a
    gateway counts as connected when it was seen within GATEWAY_CONNECTED_SECONDS (it long-polls the
    pin map far more often)."""
    revision = GaugeMetricFamily(
        "vcp_pin_map_revision", "Revision of the pin map (its change log's last entry)"
    )
    revision.add_metric([], pin_map_revision())
    yield revision
    window = dt.timedelta(seconds=settings.GATEWAY_CONNECTED_SECONDS)
    connected = GaugeMetricFamily(
        "vcp_gateways_connected", "Gateways (not revoked) seen within GATEWAY_CONNECTED_SECONDS"
    )
    connected.add_metric(
        [], Gateway.objects.filter(revoked_at__isnull=True, last_used_at__gte=now - window).count()
    )
    yield connected


class _Union:
    """One collector over several registries, so one encoder writes one document."""

    def __init__(self, *sources) -> None:
        self.sources = sources

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for source in self.sources:
            yield from source.collect()


_product = ProductCollector()


def metrics_exposition(accept: str | None) -> tuple[bytes, str]:
    """(body, content type): request metrics of this process, or of every gunicorn worker in
    multiprocess mode, and the product figures, in the format the scraper asked for."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        requests = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests)
    else:
        requests = REGISTRY
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Union(requests, _product))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type

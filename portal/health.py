"""Readiness checks (/readyz), built on django-health-check's check classes.

Each check answers ok or failing; the reason stays in the log and, for callers allowed to read
metrics, in a short detail. Nothing an outsider receives names a host, a user or an exception.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import logging
import time
from pathlib import Path
from typing import Any

import redis
from asgiref.sync import async_to_sync
from django.conf import settings
from health_check.base import HealthCheck
from health_check.checks import Cache, Database
from health_check.exceptions import HealthCheckException, ServiceUnavailable

from notifications.selectors import notice_oldest_due_age

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Broker(HealthCheck):
    """The Celery broker accepts connections: PING on Redis, a writable queue folder on the
    filesystem broker of the embedded default."""

    timeout: dt.timedelta = dataclasses.field(default=dt.timedelta(seconds=2), repr=False)

    def run(self) -> None:
        url = settings.CELERY_BROKER_URL
        if url.startswith("filesystem://"):
            folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
            if not folder.is_dir() or not folder.stat().st_mode & 0o200:
                raise ServiceUnavailable("broker folder missing")
            return
        if url.startswith(("redis://", "rediss://")):
            seconds = self.timeout.total_seconds()
            client = redis.Redis.from_url(url, socket_connect_timeout=seconds, socket_timeout=seconds)
            try:
                client.ping()
            except redis.RedisError as exc:
                raise ServiceUnavailable("broker unreachable") from exc
            finally:
                client.close()
            return
        if url.startswith("memory://"):
            return
        raise ServiceUnavailable("broker transport not checked")


@dataclasses.dataclass
class DueNotices(HealthCheck):
    """The oldest due notice has not waited longer than READYZ_NOTICE_MAX_AGE_SECONDS: beyond that,
    workers or beat are not keeping up (or not running)."""

    def run(self) -> float:
        age = notice_oldest_due_age()
        if age > settings.READYZ_NOTICE_MAX_AGE_SECONDS:
            raise ServiceUnavailable("oldest due notice too old")
        return age


CHECKS: dict[str, HealthCheck] = {
    "database": Database(),
    "cache": Cache(),
    "broker": Broker(),
    "notices": DueNotices(),
}


@dataclasses.dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    required: bool
    milliseconds: float
    detail: dict[str, Any]


def _run(check: HealthCheck) -> Any:
    if inspect.iscoroutinefunction(check.run):
        return async_to_sync(check.run)()
    return check.run()


def readiness(checks: dict[str, HealthCheck] | None = None) -> list[CheckResult]:
    """Run every check in this thread (the request's database connection), one after the other."""
    results = []
    for name, check in (checks or CHECKS).items():
        started = time.perf_counter()
        detail: dict[str, Any] = {}
        try:
            value = _run(check)
        except HealthCheckException as exc:
            ok = False
            detail["error"] = exc.message
            log.warning("readiness check %s failing: %s", name, exc.message, exc_info=exc.__cause__)
        except Exception:
            ok = False
            detail["error"] = "unexpected error"
            log.exception("readiness check %s raised", name)
        else:
            ok = True
            if name == "notices":
                detail["oldest_due_age_seconds"] = round(value, 1)
        if name == "notices" and not ok and "oldest_due_age_seconds" not in detail:
            try:
                detail["oldest_due_age_seconds"] = round(notice_oldest_due_age(), 1)
            except Exception:  # the database is down: the database check says so
                log.debug("notice age unavailable", exc_info=True)
        results.append(
            CheckResult(
                name=name,
                ok=ok,
                required=name in settings.READYZ_REQUIRED,
                milliseconds=round((time.perf_counter() - started) * 1000, 1),
                detail=detail,
            )
        )
    return results

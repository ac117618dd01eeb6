"""Logging and error reporting set-up, called from settings (so it imports no Django settings).

Logs go through structlog: JSON lines in production, readable lines in the embedded default. Lines
written with the standard `logging` module get the same treatment (the same renderer and the same
context variables), so a `log.warning(...)` deep in a service carries the request id too.
"""

from __future__ import annotations

from typing import Any

import sentry_sdk
import structlog

_SHARED = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """The LOGGING dict: one stream handler on stderr rendering `json` or `console` lines."""
    if log_format not in ("json", "console"):
        raise ValueError(f"LOG_FORMAT must be json or console, not {log_format!r}")
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {
                "()": structlog.stdlib.ProcessorFormatter,
                "foreign_pre_chain": [*_SHARED, structlog.stdlib.ExtraAdder()],
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info
                    if log_format == "json"
                    else structlog.processors.StackInfoRenderer(),
                    renderer,
                ],
            }
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Request started/finished lines are the access log; keep them at INFO whatever the root.
            "django_structlog": {"level": "INFO"},
            # django-structlog logs each request; Django's own 4xx warnings would say it twice.
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "WARNING"},
            "axes": {"level": "WARNING"},
        },
    }


def structlog_configure() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.UnicodeDecoder(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def sentry_init(*, dsn: str, environment: str, traces_sample_rate: float, **options: Any) -> None:
    """Report errors of the web and worker processes (Django and Celery integrations are automatic).

    No personal data (the SDK's default): no cookies, no user details, no request bodies.
    """
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        max_request_body_size="never",
        **options,
    )

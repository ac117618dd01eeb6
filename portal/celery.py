"""The Celery app: configuration comes from Django settings under the CELERY namespace."""

from __future__ import annotations

import os

from celery import Celery
from django_structlog.celery.steps import DjangoStructLogInitStep

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Tasks log with the request id of the request that queued them (django-structlog).
app.steps["worker"].add(DjangoStructLogInitStep)

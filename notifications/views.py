"""Notification pages."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from notifications.mail import outbox_messages


@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    """The embedded default's sent mail, for a person to read (mounted only when DEBUG is on)."""
    return render(request, "notifications/outbox.html", {"messages_sent": outbox_messages()})

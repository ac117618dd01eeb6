"""Bug reports and their events."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from contracts.models.catalog import Alias, Snapshot
from contracts.models.tenancy import Organization


class BugStatus(models.TextChoices):
    NEW = "new", "New"
    REPRODUCING = "reproducing", "Reproducing"
    REPRODUCED = "reproduced", "Reproduced"
    CANNOT_REPRODUCE = "cannot-reproduce", "Cannot reproduce (artifact gone)"
    FIXED = "fixed", "Fixed"
    CLOSED = "closed", "Closed"


class BugReport(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="bug_reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reporter_email = models.CharField(max_length=254, blank=True)
    alias = models.ForeignKey(Alias, on_delete=models.PROTECT, related_name="bug_reports")
    observed_at = models.DateTimeField()
    response_id = models.CharField(max_length=200, blank=True)
    receipt = models.JSONField(null=True, blank=True)
    prompt = models.TextField(blank=True)
    output = models.TextField(blank=True)
    expected = models.TextField(blank=True)
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="bug_reports")
    resolved_by = models.CharField(max_length=16, default="history", help_text="history or receipt")
    owning_team = models.CharField(max_length=120)
    status = models.CharField(max_length=20, choices=BugStatus.choices, default=BugStatus.NEW)
    fixed_in = models.ForeignKey(
        Snapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="fixes"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"bug #{self.pk} on {self.snapshot}"


class BugReportEvent(models.Model):
    report = models.ForeignKey(BugReport, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=20, choices=BugStatus.choices)
    note = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.report_id}: {self.status}"

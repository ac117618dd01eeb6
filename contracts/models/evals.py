"""Eval suites and results, procurement baselines and golden samples."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from contracts.models.catalog import Snapshot
from contracts.models.tenancy import Organization


class EvalSuite(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        Organization,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="eval_suites",
        help_text="Empty for a public suite.",
    )
    tolerances = models.JSONField(
        default=dict, blank=True, help_text="metric → largest drop not counted as a regression."
    )
    lower_is_better = models.JSONField(default=list, blank=True, help_text="Metrics where lower wins.")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class EvalResult(models.Model):
    """Scores of one suite on one snapshot: {metric: {"score": x, "subsets": {name: y}}}."""

    suite = models.ForeignKey(EvalSuite, on_delete=models.CASCADE, related_name="results")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="eval_results")
    scores = models.JSONField()
    cases = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["suite", "snapshot"]
        constraints = [
            models.UniqueConstraint(fields=["suite", "snapshot"], name="one_result_per_suite_snapshot")
        ]

    def __str__(self) -> str:
        return f"{self.suite.slug} on {self.snapshot.name}"


class ProcurementBaseline(models.Model):
    """The eval result an organisation bought against, per suite."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="baselines")
    suite = models.ForeignKey(EvalSuite, on_delete=models.CASCADE, related_name="+")
    result = models.ForeignKey(EvalResult, on_delete=models.PROTECT, related_name="baselines")
    marked_at = models.DateTimeField(default=timezone.now)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "suite"], name="one_baseline_per_org_suite")
        ]

    def __str__(self) -> str:
        return f"{self.organization.slug} baseline {self.result}"


class GoldenSample(models.Model):
    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="golden_samples")
    prompt_id = models.CharField(max_length=100)
    prompt = models.TextField(blank=True)
    output = models.TextField()

    class Meta:
        ordering = ["snapshot", "prompt_id"]
        constraints = [
            models.UniqueConstraint(fields=["snapshot", "prompt_id"], name="one_sample_per_snapshot_prompt")
        ]

    def __str__(self) -> str:
        return f"{self.snapshot.name}:{self.prompt_id}"

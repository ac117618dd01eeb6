"""Append-only history rows: written once, never updated or deleted (PostgreSQL triggers back this up)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models


class AppendOnlyError(ValidationError):
    """Raised when code tries to change or remove a row of an append-only history."""


class AppendOnlyModel(models.Model):
    """A history row: written once, never updated or deleted (PostgreSQL triggers back this up)."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).__name__} rows are append-only and cannot be changed.")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).__name__} rows are append-only and cannot be deleted.")


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only and cannot be changed.")

    def delete(self):
        raise AppendOnlyError(f"{self.model.__name__} rows are append-only and cannot be deleted.")

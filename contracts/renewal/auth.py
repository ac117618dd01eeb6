"""Eval runners authenticate with their own runner key (`Authorization: Bearer vcr_…`).

A runner key is a vendor-side credential of its own kind, not an organisation or staff API key: it may
only claim eval runs, report their progress and post their results, and a result is accepted only
from the runner that holds the run's lease. Keys are created with `manage.py create_eval_runner`,
shown once, stored as sha256.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from contracts.errors import NotFound
from contracts.models import EvalRunner

SEEN_EVERY_SECONDS = 60


@dataclass(frozen=True)
class RunnerPrincipal:
    """Stands in for request.user when a runner key authenticated the request."""

    runner_id: int
    name: str
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False
    is_staff: bool = False
    pk: None = None
    id: None = None
    email: str = ""

    def __str__(self) -> str:
        return f"eval-runner:{self.name}"


class RunnerKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if (
            len(parts) != 2
            or parts[0] != self.keyword
            or not parts[1].startswith(settings.EVAL_RUNNER_KEY_PREFIX)
        ):
            return None  # not a runner key: the organisation key or session authentication decides
        runner = (
            EvalRunner.objects.filter(key_hash=EvalRunner.hash_key(parts[1]), revoked_at__isnull=True)
            .only("pk", "name")
            .first()
        )
        if runner is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked eval runner key.")
        if cache.add(f"runner-seen:{runner.pk}", 1, SEEN_EVERY_SECONDS):
            EvalRunner.objects.filter(pk=runner.pk).update(last_seen_at=timezone.now())
        return RunnerPrincipal(runner_id=runner.pk, name=runner.name), runner

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="eval-runner"'


class IsEvalRunner(permissions.BasePermission):
    """A runner key. Anyone else authenticated gets 404: customers never learn which runs exist."""

    message = "This operation needs an eval runner key (manage.py create_eval_runner)."

    def has_permission(self, request, view) -> bool:
        if isinstance(request.user, RunnerPrincipal):
            return True
        if request.user is not None and request.user.is_authenticated:
            raise NotFound(
                "Eval runner endpoints answer eval runner keys only.", fields={"authorization": "runner key"}
            )
        return False


def request_runner(request) -> EvalRunner:
    return request.auth

"""Probes and metrics for the operations team: /healthz, /readyz, /metrics (docs/operations.md)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.health import readiness
from portal.metrics import metrics_allowed, metrics_exposition


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness probe (the process answers; nothing else is touched), and the do-nothing baseline
    of the resolve benchmark."""
    return JsonResponse({"ok": True})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: 200 when every required check passes, 503 otherwise. Everyone sees each check's
    name and ok/failing; only callers allowed to read /metrics also see timings and details."""
    results = readiness()
    ready = all(result.ok for result in results if result.required)
    detailed = metrics_allowed(request)
    checks = {}
    for result in results:
        status = "ok" if result.ok else ("failing" if result.required else "degraded")
        checks[result.name] = (
            {"status": status, "required": result.required, "ms": result.milliseconds, **result.detail}
            if detailed
            else status
        )
    return JsonResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain; charset=utf-8")
    body, content_type = metrics_exposition(request.headers.get("Accept"))
    return HttpResponse(body, content_type=content_type)

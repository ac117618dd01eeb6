"""The demo eval runner as a separate process, claiming and posting through the API of a live portal
process (gunicorn on 127.0.0.1), against the test database."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from contracts.models import EvalRun, EvalRunState
from contracts.renewal.runner import deterministic_score, scores_for
from notifications.models import Notice

pytestmark = pytest.mark.django_db(transaction=True)
BASE_DIR = Path(settings.BASE_DIR)
PORTS = range(8290, 8300)  # issue 19's range (8100 + N*10)


def database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = quote(db["USER"] or "") + (":" + quote(db["PASSWORD"]) if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port in {PORTS}")


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(tmp_path / "var"),
        "CELERY_TASK_ALWAYS_EAGER": "true",
        "CELERY_BROKER_URL": "memory://",
        "REDIS_URL": "",
        "DJANGO_SETTINGS_MODULE": "portal.settings",
    }


@pytest.fixture
def live_portal(tmp_path):
    """A gunicorn process serving the portal on 127.0.0.1; its URL."""
    port = free_port()
    log = open(tmp_path / "portal.log", "wb")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=BASE_DIR, env=_env(tmp_path), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # readiness: the first answer of /healthz (the worker imports Django first)
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=10):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp_path / "portal.log").read_text()[-3000:]) from None
                time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def api(url: str, path: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url + path, data=None if body is None else json.dumps(body).encode(), method="GET" if body is None else "POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def run_runner(url: str, key: str, tmp_path: Path, *, django: bool = True) -> subprocess.CompletedProcess:
    """The runner through manage.py, or (django=False) as `python -m` with no Django settings at all."""
    command = (
        [sys.executable, "manage.py", "eval_runner"]
        if django
        else [sys.executable, "-m", "contracts.renewal.runner"]
    )
    env = _env(tmp_path) if django else {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    return subprocess.run(
        [*command, "--url", url, "--key", key, "--steps", "2", "--step-seconds", "0", "--exit-when-idle"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_demo_runner_process_claims_and_posts_through_the_live_portal(renewal, live_portal, tmp_path):
    w = renewal.world
    status, asked = api(
        live_portal, "/api/v1/eval-runs/", w.key, {"suite": "clinical-qa", "alias": "v1-chat"}
    )
    assert status == 201 and asked["state"] == "queued", asked
    done = run_runner(live_portal, renewal.runner_key, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answered 1 run(s)" in done.stdout and "results accepted (200)" in done.stdout
    run = EvalRun.objects.get(pk=asked["id"])
    assert run.state == EvalRunState.DONE and run.runner == renewal.runner and run.attempts == 1
    # Deterministic per snapshot: what the runner posted is the score of this snapshot, suite and metric.
    assert run.scores["accuracy"]["score"] == deterministic_score(
        snapshot=renewal.newest.name, digest=renewal.newest.digest, suite="clinical-qa", metric="accuracy",
        lower_is_better=False,
    )  # fmt: skip
    status, shown = api(live_portal, f"/api/v1/eval-runs/{run.pk}/", w.key)
    assert status == 200 and shown["state"] == "done" and shown["baseline_snapshot"] == w.old.name
    assert {d["metric"] for d in shown["deltas"]} == {"accuracy", "citation_rate"}
    # The customer was told, once, through the outbox.
    assert (
        Notice.objects.filter(
            organization=w.org, dedupe_key=f"adhoc:eval-run:{run.pk}", channel="email"
        ).count()
        == 1
    )
    # Nothing else queued: a second runner, run without Django or the portal's settings, finds nothing.
    again = run_runner(live_portal, renewal.other_runner_key, tmp_path, django=False)
    assert again.returncode == 0 and "answered 0 run(s)" in again.stdout, again.stdout + again.stderr


def test_over_http_a_runner_cannot_post_for_another_runners_claim(renewal, live_portal):
    w = renewal.world
    api(live_portal, "/api/v1/eval-runs/", w.key, {"suite": "clinical-qa", "alias": "v1-chat"})
    status, claim = api(live_portal, "/api/v1/eval-runs/claim/", renewal.runner_key)
    assert status == 200 and claim["metrics"] == ["accuracy", "citation_rate"]
    body = {
        "lease": claim["lease"],
        "suite": claim["suite"],
        "snapshot": claim["snapshot"],
        "scores": scores_for(claim),
    }
    status, refused = api(live_portal, claim["results_url"], renewal.other_runner_key, body)
    assert status == 403 and refused["error"]["fields"] == {"run": "claimed by another runner"}
    assert EvalRun.objects.get(pk=claim["id"]).scores is None
    status, _ = api(live_portal, "/api/v1/eval-runs/claim/", w.key)  # an organisation key is no runner key
    assert status == 404

"""Benchmark: the resolve endpoint under gunicorn beside a do-nothing JsonResponse endpoint.

Both run in the same gunicorn, in the same run, driven by wrk with the same concurrency. Prints
requests/s, p50 and p99 of each and the ratio (target: resolve >= 0.8 x the do-nothing endpoint).
Run with `make bench` (installs nothing itself; wrk comes from Debian's `wrk` package).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DURATION = os.environ.get("BENCH_SECONDS", "10")
CONNECTIONS = os.environ.get("BENCH_CONNECTIONS", "32")
WORKERS = os.environ.get("BENCH_WORKERS", "2")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
KEY = "vcp_demoacme0000000000000000000000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_wrk(output: str) -> dict[str, float]:
    def to_ms(value: str) -> float:
        match = re.match(r"([\d.]+)(\w+)", value)
        assert match, f"unexpected wrk output:\n{output}"
        number, unit = match.groups()
        return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p50 = to_ms(re.search(r"^\s*50%\s+(\S+)", output, re.M).group(1))
    p99 = to_ms(re.search(r"^\s*99%\s+(\S+)", output, re.M).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {"rps": rps, "p50": p50, "p99": p99, "errors": int(non2xx.group(1)) if non2xx else 0}


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (apt-get install wrk)")
def test_resolve_throughput_beside_do_nothing_endpoint():
    var = Path(tempfile.mkdtemp(prefix="vcp-bench-"))
    env = {
        **os.environ,
        "VAR_DIR": str(var),
        "DEBUG": "0",
        "API_KEY_RATE": "100000000/min",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    env.pop("DATABASE_URL", None) if not os.environ.get("BENCH_DATABASE_URL") else env.update(
        DATABASE_URL=os.environ["BENCH_DATABASE_URL"]
    )
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([python, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True, capture_output=True)
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(python).parent / "gunicorn"),
            "portal.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            WORKERS,
            "--worker-class",
            "sync",
            "--access-logfile",
            "-",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        endpoints = (
            ("do-nothing /healthz", "/healthz", []),
            (
                "resolve /api/v1/resolve/v1-chat/",
                "/api/v1/resolve/v1-chat/",
                ["-H", f"Authorization: Bearer {KEY}"],
            ),
        )
        for _label, path, headers in endpoints:
            subprocess.run(
                ["wrk", "-t2", "-c8", "-d2s", *headers, f"http://127.0.0.1:{port}{path}"],
                check=True,
                capture_output=True,
            )  # warm
        # Interleaved rounds (anchor, resolve, anchor, resolve…): the machine's load drifts, so each
        # round's ratio compares two runs a few seconds apart, and the median ratio is reported.
        rounds: list[dict[str, dict[str, float]]] = []
        for _ in range(ROUNDS):
            results = {}
            for label, path, headers in endpoints:
                out = subprocess.run(
                    [
                        "wrk",
                        "-t2",
                        f"-c{CONNECTIONS}",
                        f"-d{DURATION}s",
                        "--latency",
                        *headers,
                        f"http://127.0.0.1:{port}{path}",
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
                results[label] = parse_wrk(out)
            rounds.append(results)
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a loaded machine: gunicorn's workers finish slowly
            server.kill()
            server.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)

    print(
        f"\ngunicorn {WORKERS} sync workers, wrk {CONNECTIONS} connections, {DURATION}s each, {ROUNDS} "
        f"interleaved rounds, cache: {'redis' if os.environ.get('REDIS_URL') else 'file (embedded default)'}"
    )
    ratios = []
    for number, results in enumerate(rounds, 1):
        for label, r in results.items():
            print(
                f"  round {number} {label:38s} {r['rps']:8.0f} req/s   p50 {r['p50']:6.2f} ms   "
                f"p99 {r['p99']:6.2f} ms   non-2xx {r['errors']}"
            )
            assert r["errors"] == 0
        base, resolve = results["do-nothing /healthz"], results["resolve /api/v1/resolve/v1-chat/"]
        ratios.append(resolve["rps"] / base["rps"])
    print(f"  ratio resolve / do-nothing per round: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"  median ratio: {statistics.median(ratios):.2f} (target >= 0.80)")

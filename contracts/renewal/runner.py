"""The demo eval runner: an outside process that claims queued eval runs from the portal's API, reports
progress and posts deterministic scores (the same snapshot always scores the same). Standard library
only, no Django: it talks to the portal over HTTP like the vendor's real runner would.

    python manage.py eval_runner --url http://127.0.0.1:8000 --key vcr_…     (the demo, with the portal's code)
    python -m contracts.renewal.runner --url https://portal.example --key vcr_…  (no Django, no settings)
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any


def deterministic_score(
    *, snapshot: str, digest: str, suite: str, metric: str, lower_is_better: bool
) -> float:
    """A score in [0.55, 0.95) (or [0.02, 0.15) when lower is better) fixed by snapshot, suite and metric."""
    h = int.from_bytes(hashlib.sha256(f"{snapshot}|{digest}|{suite}|{metric}".encode()).digest()[:4], "big")
    unit = h / 2**32
    return round(0.02 + 0.13 * unit, 4) if lower_is_better else round(0.55 + 0.40 * unit, 4)


def scores_for(claim: dict[str, Any]) -> dict[str, Any]:
    """The eval upload format for a claimed run: every metric, with its subsets spread around the score.

    Where the vendor published a score of this suite on this snapshot (`reference_scores`), the rerun
    lands within ±0.01 of it, as a real rerun would; otherwise the score comes from the hash alone."""
    lower = set(claim.get("lower_is_better") or [])
    reference = claim.get("reference_scores") or {}
    scores = {}
    for metric in claim["metrics"]:
        score = deterministic_score(
            snapshot=claim["snapshot"], digest=claim.get("snapshot_digest", ""), suite=claim["suite"],
            metric=metric, lower_is_better=metric in lower,
        )  # fmt: skip
        if isinstance(reference.get(metric), int | float):
            noise = deterministic_score(
                snapshot=claim["snapshot"],
                digest="rerun",
                suite=claim["suite"],
                metric=metric,
                lower_is_better=True,
            )  # in [0.02, 0.15): mapped to [-0.01, +0.01)
            score = round(min(max(reference[metric] + (noise - 0.085) * 0.02 / 0.13, 0.0), 1.0), 4)
        subsets = {}
        for index, name in enumerate(claim.get("subsets", {}).get(metric, [])):
            spread = deterministic_score(
                snapshot=claim["snapshot"],
                digest=name,
                suite=claim["suite"],
                metric=metric,
                lower_is_better=True,
            )
            subsets[name] = round(min(max(score + (spread - 0.085) * (1 if index % 2 else -1), 0.0), 1.0), 4)
        scores[metric] = {"score": score, "subsets": subsets}
    return scores


class Portal:
    """The few API calls a runner makes, with its key."""

    def __init__(self, base_url: str, key: str, *, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key
        self.timeout = timeout

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json", "Accept": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as error:
            raw = error.read()
            try:
                return error.code, json.loads(raw) if raw else None
            except ValueError:
                return error.code, {"error": {"message": raw[:200].decode(errors="replace")}}


def run_one(portal: Portal, *, steps: int, step_seconds: float, log: Callable[[str], None]) -> dict | None:
    """Claim one run and answer it; None when nothing is queued."""
    status, claim = portal.call("GET", "/api/v1/eval-runs/claim/")
    if status == 204:
        return None
    if status != 200 or not claim:
        raise RuntimeError(f"claim refused: {status} {claim}")
    log(f"claimed run #{claim['id']}: {claim['suite']} on {claim['snapshot']} (attempt {claim['attempt']})")
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        status, body = portal.call(
            "POST", claim["progress_url"], {"lease": claim["lease"], "progress": step * 100 // (steps + 1)}
        )
        if status != 200:
            log(f"run #{claim['id']}: progress refused ({status}): {body}")
            return claim
    status, body = portal.call(
        "POST",
        claim["results_url"],
        {
            "lease": claim["lease"],
            "suite": claim["suite"],
            "snapshot": claim["snapshot"],
            "scores": scores_for(claim),
        },
    )
    log(f"run #{claim['id']}: results {'accepted' if status == 200 else 'refused'} ({status}): {body}")
    return claim


def run_forever(
    base_url: str,
    key: str,
    *,
    poll_seconds: float = 5.0,
    steps: int = 4,
    step_seconds: float = 1.0,
    exit_when_idle: bool = False,
    log: Callable[[str], None] = print,
) -> int:
    """Claim and answer runs until stopped (or, with exit_when_idle, until the queue is empty).
    Waits for the portal to come up. Returns the number of runs answered."""
    portal = Portal(base_url, key)
    answered = 0
    while True:
        try:
            claim = run_one(portal, steps=steps, step_seconds=step_seconds, log=log)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            log(f"portal not reachable at {base_url} ({exc}); retrying")
            claim = None
            if exit_when_idle:
                raise
        if claim is not None:
            answered += 1
            continue
        if exit_when_idle:
            return answered
        time.sleep(poll_seconds)


def main(argv: list[str] | None = None) -> int:
    """`python -m contracts.renewal.runner --url URL --key KEY`: the runner without Django or its settings."""
    import argparse  # noqa: PLC0415 -- only the command line needs it

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="The portal's base URL")
    parser.add_argument("--key", required=True, help="Runner key (vcr_…)")
    parser.add_argument("--poll", type=float, default=5.0, help="Seconds between claims when idle")
    parser.add_argument("--steps", type=int, default=4, help="Progress reports per run")
    parser.add_argument("--step-seconds", type=float, default=1.0, help="Pause between progress reports")
    parser.add_argument("--exit-when-idle", action="store_true", help="Stop once nothing is queued")
    args = parser.parse_args(argv)
    answered = run_forever(
        args.url, args.key, poll_seconds=args.poll, steps=args.steps, step_seconds=args.step_seconds,
        exit_when_idle=args.exit_when_idle, log=lambda line: print(line, flush=True),
    )  # fmt: skip
    print(f"answered {answered} run(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

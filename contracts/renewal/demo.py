"""Demo data of renewal: the demo eval runner's fixed key (printed by seed_demo, used by `make run`)."""

from __future__ import annotations

from contracts.renewal import services

DEMO_RUNNER_NAME = "demo-runner"
DEMO_RUNNER_KEY = "vcr_demorunner" + "0" * 30


def seed_eval_runner() -> list[str]:
    services.eval_runner_store(name=DEMO_RUNNER_NAME, raw_key=DEMO_RUNNER_KEY)
    return [f"runner-key: {DEMO_RUNNER_KEY} name={DEMO_RUNNER_NAME}"]

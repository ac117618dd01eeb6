import os

from django.conf import settings
from django.core.management.base import BaseCommand

from contracts.renewal.demo import DEMO_RUNNER_KEY
from contracts.renewal.runner import run_forever


class Command(BaseCommand):
    help = (
        "Run the demo eval runner: claim queued eval runs from the portal's API and post deterministic scores "
        "(per snapshot). Talks to the portal over HTTP only, like the vendor's own runner."
    )

    def add_arguments(self, parser):
        parser.add_argument("--url", default=settings.SITE_URL, help="The portal's base URL")
        parser.add_argument("--key", default=os.environ.get("EVAL_RUNNER_KEY", ""), help="Runner key (vcr_…)")
        parser.add_argument("--poll", type=float, default=5.0, help="Seconds between claims when idle")
        parser.add_argument("--steps", type=int, default=4, help="Progress reports per run")
        parser.add_argument("--step-seconds", type=float, default=1.0, help="Pause between progress reports")
        parser.add_argument("--exit-when-idle", action="store_true", help="Stop once nothing is queued")

    def handle(
        self,
        *args,
        url: str,
        key: str,
        poll: float,
        steps: int,
        step_seconds: float,
        exit_when_idle: bool,
        **options,
    ):
        key = key or DEMO_RUNNER_KEY
        answered = run_forever(
            url, key, poll_seconds=poll, steps=steps, step_seconds=step_seconds, exit_when_idle=exit_when_idle,
            log=lambda line: (self.stdout.write(line), self.stdout.flush()),
        )  # fmt: skip
        self.stdout.write(f"answered {answered} run(s)")

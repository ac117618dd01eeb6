"""Plan and send what is due now, as the beat would (tasks run in this process)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from notifications import services
from notifications.tasks import send_notice


class Command(BaseCommand):
    help = "Plan the notices due now, escalate overdue acknowledgements, and send everything due."

    def handle(self, *args, **options) -> None:
        planned = services.notices_plan()
        escalated = services.notices_escalate()
        results: dict[str, int] = {}
        for notice_id in services.notices_due_ids():
            outcome = send_notice.apply(args=[notice_id]).get()
            results[outcome] = results.get(outcome, 0) + 1
        summary = ", ".join(f"{key}={value}" for key, value in sorted(results.items())) or "nothing due"
        self.stdout.write(f"planned={planned} escalated={escalated} {summary}")

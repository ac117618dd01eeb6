from django.core.management.base import BaseCommand, CommandError

from contracts.errors import ApplicationError
from contracts.renewal import services


class Command(BaseCommand):
    help = "Register an eval runner (vendor side) and print its key, once: `runner-key: <key> name=<name>`."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="A name to recognise the runner by")

    def handle(self, *args, name: str, **options):
        try:
            runner, raw = services.eval_runner_create(name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"runner-key: {raw} name={runner.name}")

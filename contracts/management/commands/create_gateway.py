from django.core.management.base import BaseCommand, CommandError

from contracts.errors import ApplicationError
from contracts.gateway import services


class Command(BaseCommand):
    help = "Create a serving gateway and print its key (shown only once): `gateway-key: <key> name=<name>`."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="The gateway's name (letters, digits, - and _)")

    def handle(self, *args, name: str, **options):
        try:
            gateway, raw = services.gateway_create(name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"gateway-key: {raw} name={gateway.name}")

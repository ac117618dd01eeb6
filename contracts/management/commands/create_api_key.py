from django.core.management.base import BaseCommand, CommandError

from contracts.errors import ApplicationError
from contracts.models import Organization
from contracts.tenancy import services


class Command(BaseCommand):
    help = "Create an API key for an organisation and print it (it is shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organisation slug")
        parser.add_argument("--name", required=True, help="A name to recognise the key by")

    def handle(self, *args, org: str, name: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug {org!r}.")
        try:
            _key, raw = services.api_key_create(org=organization, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(raw)

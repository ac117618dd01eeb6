from django.core.management.base import BaseCommand, CommandError

from contracts.errors import ApplicationError
from contracts.identity import provisioning
from contracts.models import Organization


class Command(BaseCommand):
    help = "Create a SCIM token for an organisation's identity provider and print it (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organisation slug")
        parser.add_argument("--name", default="Identity provider", help="A name to recognise the token by")

    def handle(self, *args, org: str, name: str, **options):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug {org!r}.")
        try:
            _token, raw = provisioning.scim_token_create(org=organization, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"scim-token: {raw} org={org}")

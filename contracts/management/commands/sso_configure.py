from django.core.management.base import BaseCommand, CommandError

from contracts.errors import ApplicationError
from contracts.identity import services
from contracts.models import Organization, Role


class Command(BaseCommand):
    help = (
        "Point an organisation at its OpenID Connect provider (vendor staff). The domains given are "
        "verified at once: addresses there sign in through this provider."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="Organisation slug")
        parser.add_argument("--issuer", required=True, help="The provider's issuer URL (https)")
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--client-secret", required=True)
        parser.add_argument(
            "--domain",
            action="append",
            default=[],
            help="An e-mail domain the organisation owns (repeatable)",
        )
        parser.add_argument(
            "--default-role", choices=Role.values, help="Role of people created on first sign-in"
        )
        parser.add_argument("--require-sso", action="store_true", help="Refuse password sign-in for members")

    def handle(
        self, *args, org: str, issuer: str, client_id: str, client_secret: str, domain: list[str], **options
    ):
        organization = Organization.objects.filter(slug=org).first()
        if organization is None:
            raise CommandError(f"No organisation with slug {org!r}.")
        try:
            identity = services.sso_configure(
                org=organization,
                issuer=issuer,
                client_id=client_id,
                client_secret=client_secret,
                domains=domain,
                domains_verified=True,
                default_role=options.get("default_role"),
            )
            if options["require_sso"]:
                identity = services.sso_policy_set(
                    org=organization,
                    require_sso=True,
                    require_mfa_for_admins=identity.require_mfa_for_admins,
                    default_role=identity.sso_default_role,
                    acting_user=None,
                )
        except ApplicationError as exc:
            raise CommandError(f"{exc.message} {exc.fields or ''}".strip()) from exc
        domains = ", ".join(sorted(organization.domains.values_list("domain", flat=True))) or "none"
        self.stdout.write(
            f"sso: org={org} provider={identity.sso_provider_id} issuer={identity.sso_issuer} domains={domains} "
            f"callback=/accounts/oidc/{identity.sso_provider_id}/login/callback/"
            f"{' require-sso' if identity.require_sso else ''}"
        )

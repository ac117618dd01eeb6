from django.core.management.base import BaseCommand

from portal.demo import SEEDERS


class Command(BaseCommand):
    help = "Seed the demo data (idempotent) and print the demo logins and API keys."

    def handle(self, *args, **options):
        for seeder in SEEDERS:
            for line in seeder():
                self.stdout.write(line)

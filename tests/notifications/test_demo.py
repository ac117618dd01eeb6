from __future__ import annotations

import pytest

from contracts.catalog import demo as catalog_demo
from contracts.pins import demo as pins_demo
from contracts.tenancy import demo as tenancy_demo
from notifications.demo import seed_notifications
from notifications.models import CalendarToken, Contact, Notice, NoticeStatus, WebhookEndpoint
from portal import demo

pytestmark = pytest.mark.django_db


def test_demo_seeder_is_registered_and_idempotent(settings, tmp_path):
    settings.OUTBOX_DIR = tmp_path
    assert seed_notifications in demo.SEEDERS
    # The catalog and organisations are all this seeder needs; the other areas' seeders are theirs to test.
    for seeder in (
        catalog_demo.seed_catalog,
        tenancy_demo.seed_organizations,
        pins_demo.seed_pins,
        seed_notifications,
    ):
        seeder()
    counts = (Notice.objects.count(), Contact.objects.count(), WebhookEndpoint.objects.count())
    assert counts[0] > 0 and counts[1] == 3 and counts[2] == 3
    assert CalendarToken.objects.filter(revoked_at__isnull=True).count() == 3
    assert Notice.objects.filter(status=NoticeStatus.SENT).exists()
    assert Notice.objects.filter(acknowledged_at__isnull=False).count() == 1
    seed_notifications()
    assert (Notice.objects.count(), Contact.objects.count(), WebhookEndpoint.objects.count()) == counts

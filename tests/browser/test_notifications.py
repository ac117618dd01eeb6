from __future__ import annotations

import pytest

from notifications import services
from tests import factories as f
from tests.browser.conftest import login, screenshot
from tests.notifications.conftest import deprecate, webhook_receiver  # noqa: F401 (webhook_receiver: fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_sets_up_recipients_a_webhook_and_the_calendar_and_reads_the_notice_log(
    page,
    world,
    webhook_receiver,  # noqa: F811 (the imported fixture)
):
    deprecate(world.old, deprecated_at=f.days(-1), retires_at=f.days(120), replacement=world.current)
    services.notices_plan()
    login(page, "acme-admin")
    page.goto("/o/acme/notifications/")
    assert page.locator("h1").inner_text() == "Notifications"
    assert page.locator("#notices").get_by_text("Deprecation announced").count() == 1

    page.fill("#contact-email", "procurement@acme.example")
    page.click("#recipients form.inline-form button[type=submit]")
    assert page.locator("#recipients").get_by_text("procurement@acme.example").count() == 1

    page.fill("#webhook-url", webhook_receiver.url)
    page.click("#webhooks form:has(#webhook-url) button[type=submit]")
    secret = page.locator("#new-secret code").inner_text()
    assert secret.startswith("whsec_")
    page.goto("/o/acme/notifications/")
    assert page.get_by_text(secret).count() == 0
    page.click("#webhooks button:has-text('Send test event')")
    assert page.locator("#delivery-log").get_by_text("webhook.test").count() == 1
    assert page.locator("#delivery-log").get_by_text("Succeeded").count() == 1
    assert len(webhook_receiver.requests) == 1

    page.click("#calendar button:has-text('Create link')")
    assert "calendar.ics?token=" in page.locator("#calendar-link").inner_text()
    screenshot(page, "notifications-settings")

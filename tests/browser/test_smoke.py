from __future__ import annotations

import pytest

from tests.browser.conftest import login, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_signs_in_and_sees_the_pins_of_their_organisation(page, world):
    login(page, "acme-admin")
    assert page.url.endswith("/o/acme/")
    assert page.locator("h1").inner_text().startswith("Pins")
    assert page.get_by_text("v1-chat").count() >= 1
    screenshot(page, "dashboard-smoke")

"""A marketer opens a customer's page and reads their timeline."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By

from audiences.models import Event
from audiences.services import customer_upsert
from tests.browser import test_builder as builder_tests
from tests.browser.test_builder import log_in, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
marketer = builder_tests.marketer  # a fixture


def test_a_customers_timeline(browser, live_server, marketer, screenshot):
    ana, _ = customer_upsert(external_id="ana", first_name="Ana")
    start = timezone.now() - timedelta(hours=1)
    for minute, name in enumerate(("signed_up", "app_open", "purchase")):
        Event.objects.create(customer=ana, name=name, occurred_at=start + timedelta(
            minutes=minute), properties={"total": 30} if name == "purchase" else {})
    log_in(browser, live_server, marketer)

    browser.get(f"{live_server.url}/audiences/customer/{ana.pk}/change/")

    wait_for(browser, "#timeline")
    titles = [item.text for item in browser.find_elements(
        By.CSS_SELECTOR, "#timeline .jh-timeline-title")]
    assert titles == ["Event: purchase", "Event: app_open", "Event: signed_up"]
    assert "total: 30" in browser.find_element(By.CSS_SELECTOR, "#timeline").text
    browser.find_element(By.CSS_SELECTOR, "#timeline").screenshot(
        str(screenshot.folder / "customer-timeline.png"))

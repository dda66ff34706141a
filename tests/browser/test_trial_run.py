"""A marketer runs a journey with a one-hour wait as a test and reads its timeline at once."""

import time
from datetime import timedelta

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from campaigns.models import Campaign, Step
from notifications.models import Device, Send, Template
from tests.analytics.rollup_data import customer
from tests.browser import test_builder as builder_tests
from tests.browser.test_builder import log_in, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
marketer = builder_tests.marketer  # a fixture


def test_a_test_run_with_a_one_hour_wait(browser, live_server, marketer, screenshot):
    campaign = Campaign.objects.create(name="Welcome journey", kind="journey", trigger="event",
                                       trigger_event_name="signed_up")
    Step.objects.create(campaign=campaign, position=1, kind="wait", duration=timedelta(hours=1))
    Step.objects.create(campaign=campaign, position=2, kind="send", name="Hello",
                        template=Template.objects.create(name="Hello", title="Welcome!",
                                                         body="Glad you are here."))
    Step.objects.create(campaign=campaign, position=3, kind="exit")
    customer("ana", "fcm")
    log_in(browser, live_server, marketer)
    browser.get(f"{live_server.url}/campaigns/campaign/{campaign.pk}/change/")

    started = time.monotonic()
    browser.find_element(By.ID, "id_testrun_customer").send_keys("ana")
    browser.find_element(By.CSS_SELECTOR, ".jh-testrun-button").click()
    log = wait_for(browser, "#jh-testrun-log")

    assert time.monotonic() - started < 60
    lines = [line.text for line in log.find_elements(By.CSS_SELECTOR, "li")]
    assert lines[0].startswith("1. Wait for a duration Wait 1 hour: fast-forwarded.")
    assert lines[1].startswith("2. Hello Sent “Welcome!” (Glad you are here.) as a test to 1")
    assert lines[2].startswith("3. Exit Exit step")
    assert Send.objects.get().source == "test"
    screenshot("test-run-1-timeline")


def test_a_test_run_on_the_test_devices(browser, live_server, marketer, screenshot):
    campaign = Campaign.objects.create(name="Welcome journey", kind="journey", trigger="event",
                                       trigger_event_name="signed_up")
    Step.objects.create(campaign=campaign, position=1, kind="send", name="Hello",
                        template=Template.objects.create(name="Hello", title="Welcome!",
                                                         body="Glad you are here."))
    customer("ana", "fcm")
    customer("ben", "apns")
    Device.objects.filter(kind="fcm").update(is_test=True)
    log_in(browser, live_server, marketer)
    browser.get(f"{live_server.url}/campaigns/campaign/{campaign.pk}/change/")

    Select(browser.find_element(By.ID, "id_testrun_for")).select_by_value("test_devices")
    browser.find_element(By.CSS_SELECTOR, ".jh-testrun-button").click()
    owner = wait_for(browser, ".jh-testrun-owner")

    assert owner.find_element(By.TAG_NAME, "h3").text == "ana"
    assert "receives each message sent below" in owner.find_element(
        By.CSS_SELECTOR, ".jh-testrun-device").text
    assert "Sent “Welcome!” (Glad you are here.) as a test to FCM Android" in owner.text
    assert len(browser.find_elements(By.CSS_SELECTOR, ".jh-testrun-owner")) == 1  # not ben
    assert Send.objects.get().test_devices_only
    screenshot("test-run-2-test-devices")

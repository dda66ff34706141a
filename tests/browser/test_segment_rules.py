"""A marketer builds a segment's rules as rows, sees the live count, and saves the same JSON."""

import json

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from audiences.models import Segment
from audiences.services import customer_upsert, event_track
from tests.browser import test_builder as builder_tests
from tests.browser.conftest import WAIT_SECONDS
from tests.browser.test_builder import log_in, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
marketer = builder_tests.marketer  # a fixture


def count_says(browser, text: str) -> None:
    status = "#jh-preview .jh-preview-status"
    try:
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda b: b.find_element(By.CSS_SELECTOR, status).text == text)
    except TimeoutException:
        said = browser.find_element(By.CSS_SELECTOR, status).text
        rules = browser.find_element(By.ID, "id_rules").get_attribute("value")
        raise AssertionError(f"the count says {said!r}; the rules: {rules}") from None


def last_rule(browser):
    return browser.find_elements(By.CSS_SELECTOR, "#jh-rules-builder .jh-rule")[-1]


def test_a_segment_built_as_rows(browser, live_server, marketer, screenshot):
    for name, city in (("ana", "Lisbon"), ("ben", "Lisbon"), ("cy", "Porto")):
        customer, _ = customer_upsert(external_id=name, attributes={"city": city})
        if name != "ben":
            event_track(customer=customer, name="purchase")
    log_in(browser, live_server, marketer)
    browser.get(f"{live_server.url}/audiences/segment/add/")
    browser.find_element(By.ID, "id_name").send_keys("Lisbon buyers")
    count_says(browser, "3 customers match")

    # City is Lisbon: the attribute key and its values are offered as you type.
    browser.find_element(By.CSS_SELECTOR, "#jh-rules-builder .jh-rule-add-rule").click()
    row = last_rule(browser)
    row.find_element(By.CSS_SELECTOR, ".jh-rule-key").send_keys("city")
    assert "city" in [o.get_attribute("value") for o in browser.find_elements(
        By.CSS_SELECTOR, "#jh-rules-list-attributes option")]
    row.find_element(By.CSS_SELECTOR, "input[aria-label=value]").send_keys("Lisbon")
    count_says(browser, "2 customers match")

    # ... and any of: bought something (the event name offered).
    browser.find_element(By.CSS_SELECTOR, "#jh-rules-builder .jh-rule-add-group").click()
    Select(last_rule(browser).find_element(By.CSS_SELECTOR, "select[aria-label='rule type']")) \
        .select_by_value("event")
    event = last_rule(browser).find_element(By.CSS_SELECTOR, ".jh-rule-event")
    event.send_keys("purchase")
    assert "purchase" in [o.get_attribute("value") for o in browser.find_elements(
        By.CSS_SELECTOR, "#jh-rules-list-events option")]
    count_says(browser, "1 customer match")

    # A mistake shows on its row.
    times = last_rule(browser).find_element(By.CSS_SELECTOR, "input[aria-label='at least, times']")
    times.send_keys("0")
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: "must be a positive integer" in
                                               last_rule(b).text)
    times.clear()
    times.send_keys("1")
    count_says(browser, "1 customer match")
    screenshot("segment-rules-1-visual")

    # The JSON view holds the same rules.
    browser.find_element(By.ID, "jh-rules-toggle").click()
    expected = {"all": [{"attribute": {"key": "city", "op": "eq", "value": "Lisbon"}},
                        {"any": [{"event": {"name": "purchase", "min_count": 1}}]}]}
    assert json.loads(wait_for(browser, "#id_rules").get_attribute("value")) == expected
    browser.find_element(By.NAME, "_continue").click()
    wait_for(browser, "#jh-rules-builder")
    assert Segment.objects.get(name="Lisbon buyers").rules == expected

"""A marketer builds a branching journey without saving and the diagram follows each edit."""

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from campaigns.models import Campaign
from notifications.models import Template
from tests.browser import test_builder as builder_tests
from tests.browser.conftest import WAIT_SECONDS
from tests.browser.test_builder import choose_autocomplete, log_in, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
marketer = builder_tests.marketer  # a fixture


def drawn_steps(browser) -> list[str]:
    # Read in one script: the page swaps the diagram in while the test looks at it.
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#jh-flow svg .jh-flow-step'))"
        ".map((g) => g.getAttribute('data-step'))")


def drawn_text(browser) -> str:
    return browser.execute_script(
        "const svg = document.querySelector('#jh-flow svg'); return svg ? svg.textContent : ''")


def wait_drawn(browser, count: int, more: str = ""):
    """Until the diagram shows ``count`` steps (and ``more`` in its text)."""
    try:
        WebDriverWait(browser, WAIT_SECONDS).until(
            lambda b: len(drawn_steps(b)) == count and more in drawn_text(b))
    except TimeoutException:
        panel = browser.find_element(By.CSS_SELECTOR, "#jh-flow").text
        raise AssertionError(f"steps drawn {drawn_steps(browser)}; the panel: {panel}") from None


def add_from_diagram(browser, kind: str) -> str:
    Select(browser.find_element(By.ID, "jh-flow-add-kind")).select_by_value(kind)
    browser.find_element(By.ID, "jh-flow-add").click()
    return browser.find_elements(By.CSS_SELECTOR, "#steps-group .inline-related.jh-picked")[0] \
        .get_attribute("id")


def test_a_branching_journey_drawn_before_saving(browser, live_server, marketer, screenshot):
    Template.objects.create(name="Nudge", title="Still there?", body="Your cart waits.")
    log_in(browser, live_server, marketer)
    browser.get(f"{live_server.url}/campaigns/campaign/add/?kind=journey")
    browser.find_element(By.ID, "id_name").send_keys("Cart rescue")
    Select(browser.find_element(By.ID, "id_kind")).select_by_value("journey")
    Select(wait_for(browser, "#id_trigger")).select_by_value("event")
    wait_for(browser, "#id_trigger_event_name").send_keys("cart_added")
    wait_drawn(browser, 0, "Event: cart_added")

    # Three steps added from the diagram: a wait for a purchase, a nudge, an exit.
    wait = add_from_diagram(browser, "wait_event")
    wait_drawn(browser, 1, "2 problems")  # no event name, no timeout yet: red at its step
    browser.find_element(By.ID, f"id_{wait}-event_name").send_keys("purchase")
    browser.find_element(By.ID, f"id_{wait}-duration_1").send_keys("1")  # hours
    nudge = add_from_diagram(browser, "send")
    choose_autocomplete(browser, f"#{nudge}", "template", "Nudge")
    exit_row = add_from_diagram(browser, "exit")
    wait_drawn(browser, 3, "Template: Nudge")
    assert not browser.find_elements(By.CSS_SELECTOR, "#jh-flow .jh-flow-problem")

    # Branch to steps that were never saved: happened -> exit, timed out -> the nudge.
    next_select = Select(browser.find_element(By.NAME, f"{wait}-next_step"))
    next_select.select_by_value(f"new-{exit_row.split('-')[1]}")
    Select(browser.find_element(By.NAME, f"{wait}-else_step")).select_by_value(
        f"new-{nudge.split('-')[1]}")
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: len(b.find_elements(
        By.CSS_SELECTOR, "#jh-flow svg .jh-flow-jump")) >= 1)
    assert "timed out" in drawn_text(browser)

    # Move the exit above the nudge, then back; the diagram follows the order.
    browser.find_element(By.CSS_SELECTOR, f"#{exit_row} .jh-move-up").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: drawn_steps(b)[1] == f"new-{exit_row.split('-')[1]}")
    browser.find_element(By.CSS_SELECTOR, f"#{exit_row} .jh-move-down").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda b: drawn_steps(b)[2] == f"new-{exit_row.split('-')[1]}")
    browser.find_element(By.CSS_SELECTOR, "#jh-flow").screenshot(
        str(screenshot.folder / "live-flow-diagram.png"))
    screenshot("live-flow-1-unsaved")

    browser.find_element(By.NAME, "_continue").click()
    wait_for(browser, "#jh-status")
    campaign = Campaign.objects.get(name="Cart rescue")
    wait_step, send_step, exit_step = campaign.steps.order_by("position")
    assert (wait_step.next_step, wait_step.else_step) == (exit_step, send_step)

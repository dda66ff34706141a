"""A marketer builds, previews, launches and pauses a journey in a real browser."""

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

from audiences.services import customer_upsert
from campaigns.models import Campaign
from notifications.models import Template
from tests.browser.conftest import WAIT_SECONDS

# serialized_rollback like every transactional test here: a plain flush would drop the rows
# data migrations made, which later tests rely on.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
PASSWORD = "builder-pass-1"


@pytest.fixture
def marketer(django_user_model):
    return django_user_model.objects.create_superuser("marketer", "m@example.com", PASSWORD)


def wait_for(browser, css: str):
    return WebDriverWait(browser, WAIT_SECONDS).until(
        EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def wait_for_text(browser, css: str, text: str) -> None:
    """Until the element shows the text, finding it afresh each time: the page swaps it in
    (or reloads) after an action, so an element found earlier may be gone."""
    WebDriverWait(browser, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,
                                                             NoSuchElementException)).until(
        lambda b: b.find_element(By.CSS_SELECTOR, css).text == text)


def log_in(browser, live_server, user) -> None:
    browser.get(f"{live_server.url}/login/")
    browser.find_element(By.ID, "id_username").send_keys(user.username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait_for(browser, "#user-tools")


def add_step(browser, index: int, kind: str) -> None:
    browser.find_element(By.CSS_SELECTOR, "#steps-group .add-row a").click()
    row = wait_for(browser, f"#steps-{index}")
    Select(row.find_element(By.NAME, f"steps-{index}-kind")).select_by_value(kind)


def choose_autocomplete(browser, row_css: str, field: str, text: str) -> None:
    """Pick ``text`` in an admin autocomplete (select2) box, as a person would."""
    browser.find_element(By.CSS_SELECTOR, f"{row_css} .field-{field} .select2-selection").click()
    search = wait_for(browser, ".select2-container--open .select2-search__field")
    search.send_keys(text)
    option = WebDriverWait(browser, WAIT_SECONDS).until(EC.element_to_be_clickable((
        By.XPATH, f"//li[contains(@class, 'select2-results__option') and text()='{text}']")))
    option.click()


def test_build_preview_launch_and_pause_a_journey(browser, live_server, marketer, screenshot):
    Template.objects.create(name="Welcome", title="Hi {{ customer.first_name }}",
                            body="Glad you are here in {{ customer.attributes.city }}.")
    customer_upsert(external_id="ana-1", first_name="Ana", attributes={"city": "Porto"})
    log_in(browser, live_server, marketer)

    # Build: a journey entered on sign-up that waits a day, says hello, and exits.
    browser.get(f"{live_server.url}/campaigns/campaign/add/?kind=journey")
    browser.find_element(By.ID, "id_name").send_keys("Welcome journey")
    Select(browser.find_element(By.ID, "id_kind")).select_by_value("journey")
    Select(wait_for(browser, "#id_trigger")).select_by_value("event")
    wait_for(browser, "#id_trigger_event_name").send_keys("signed_up")
    add_step(browser, 0, "wait")
    wait_for(browser, "#id_steps-0-duration_0").send_keys("1")  # days
    add_step(browser, 1, "send")
    choose_autocomplete(browser, "#steps-1", "template", "Welcome")
    add_step(browser, 2, "exit")
    assert not browser.find_element(By.ID, "id_steps-2-duration_0").is_displayed()
    assert not browser.find_element(By.ID, "id_send_at_0").is_displayed()  # broadcast only
    screenshot("builder-1-add-journey")
    browser.find_element(By.NAME, "_continue").click()

    wait_for(browser, "#jh-builder, .errornote")
    errors = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".errorlist, .errornote")]
    assert not errors, errors
    campaign = Campaign.objects.get(name="Welcome journey")
    assert [s.kind for s in campaign.steps.order_by("position")] == ["wait", "send", "exit"]
    flow = browser.find_element(By.CSS_SELECTOR, "svg.jh-flow")
    assert len(flow.find_elements(By.CSS_SELECTOR, ".jh-flow-step")) == 3
    assert "Wait 1 day" in flow.text and "Template: Welcome" in flow.text
    WebDriverWait(browser, WAIT_SECONDS).until(lambda b: "Anyone" in b.find_element(
        By.CSS_SELECTOR, ".jh-audience-size").text)

    # Preview for a customer.
    preview = browser.find_element(By.ID, "id_preview_customer")
    preview.send_keys("ana-1")
    browser.find_element(By.CSS_SELECTOR, ".jh-preview-form button").click()
    title = wait_for(browser, ".jh-message-title")
    assert title.text == "Hi Ana"
    assert "Porto" in browser.find_element(By.CSS_SELECTOR, ".jh-message-body").text
    screenshot("builder-2-preview")
    flow_path = screenshot.folder / "builder-flow.png"
    browser.find_element(By.CSS_SELECTOR, "svg.jh-flow").screenshot(str(flow_path))
    print(f"screenshot: {flow_path}")

    # Launch, then pause.
    browser.find_element(By.CSS_SELECTOR, ".jh-action-launch").click()
    wait_for_text(browser, "#jh-status .jh-status", "Running")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    browser.find_element(By.CSS_SELECTOR, ".jh-action-pause").click()
    wait_for_text(browser, "#jh-status .jh-status", "Paused")
    assert browser.find_elements(By.CSS_SELECTOR, ".jh-action-resume")
    screenshot("builder-3-paused")
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED

"""On a fresh demo, an analyst opens the referral page and a campaign report in a real browser
and finds charts with data in them."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse
from selenium.webdriver.common.by import By

from campaigns.models import Campaign
from tests.browser.test_builder import PASSWORD, log_in, wait_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def analyst(django_user_model, settings):
    settings.DEMO_WEBPUSH_SINK = False
    call_command("seed_demo", customers=400, stdout=io.StringIO())
    return django_user_model.objects.create_superuser("analyst", "a@example.com", PASSWORD)


def drawn_points(browser, css: str) -> int:
    """Points above the zero line in the chart's lines (a flat line at 0 has none)."""
    return browser.execute_script("""
        let above = 0;
        for (const line of document.querySelectorAll(arguments[0] + ' polyline')) {
            const ys = line.getAttribute('points').trim().split(' ').map(p => +p.split(',')[1]);
            const bottom = Math.max(...ys);
            above += ys.filter(y => y < bottom).length;
        }
        return above;""", css)


def test_the_referral_page_and_a_campaign_report_show_charts_with_data(
        browser, live_server, analyst, screenshot):
    log_in(browser, live_server, analyst)

    browser.get(live_server.url + reverse("analytics_reports:referrals"))
    wait_for(browser, "#k-factor-chart svg")
    assert drawn_points(browser, "#k-factor-chart") > 0
    assert drawn_points(browser, "#signups-chart") > 0
    assert browser.find_elements(By.CSS_SELECTOR, "#top-referrers tbody tr td")
    screenshot("referrals")

    offer = Campaign.objects.get(name="Limited-time offer")
    browser.get(live_server.url + reverse("analytics_reports:campaign", args=[offer.pk]))
    wait_for(browser, "#chart-days svg")
    assert drawn_points(browser, "#chart-days") > 0
    assert drawn_points(browser, "#chart-revenue") > 0
    bars = browser.find_elements(By.CSS_SELECTOR, ".funnel svg rect")
    assert any(float(bar.get_attribute("width")) > 1 for bar in bars)
    assert "Open the campaign" in browser.page_source
    screenshot("campaign-report")

    browser.get(live_server.url + reverse("admin:analytics_dashboard"))
    wait_for(browser, "#dead-tokens svg")
    columns = browser.find_elements(By.CSS_SELECTOR, "#dead-tokens svg rect")
    assert sum(float(c.get_attribute("height")) > 0 for c in columns) > 0  # not flat at 0
    assert drawn_points(browser, "#deliveries-per-day") > 0
    screenshot("dashboard")

"""The report pages in the admin: a campaign's report with a date range, and the list."""

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from analytics.rollups import rollups_refresh
from tests.analytics.rollup_data import campaign_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = campaign_world()
    rollups_refresh()
    return world


@pytest.fixture
def staff_client(client):
    """Staff who may only view campaigns, as an analyst would."""
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(user)
    return client


def test_campaign_report_page_shows_tables_and_lift(staff_client, world):
    url = reverse("analytics_reports:campaign", args=[world.campaign.pk])

    response = staff_client.get(url, {"since": "2026-03-02", "until": "2026-03-03"})

    assert response.status_code == 200
    html = response.content.decode()
    for text in ("Per step", "1. Offer", "2. Reminder", "Per A/B variant", "Per platform",
                 "webpush", "frequency_capped", "dead_token", "Treatment vs campaign holdout",
                 "No winner yet"):
        assert text in html, text
    assert response.context["totals_rows"][0]["sent"] == "6"
    assert response.context["totals_rows"][0]["open_rate"] == "50.0%"


def test_a_bad_range_is_a_form_error(staff_client, world):
    url = reverse("analytics_reports:campaign", args=[world.campaign.pk])

    response = staff_client.get(url, {"since": "2026-03-05", "until": "2026-03-01"})

    assert response.status_code == 400
    assert "must not be before the first" in response.content.decode()
    assert "report" not in response.context or not response.context.get("report")


def test_index_lists_campaigns_with_links(staff_client, world):
    response = staff_client.get(reverse("analytics_reports:index"))

    assert response.status_code == 200
    assert reverse("analytics_reports:campaign", args=[world.campaign.pk]) in (
        response.content.decode())


def test_staff_without_campaign_permission_are_refused(client, world):
    client.force_login(User.objects.create_user("nobody", password="pw", is_staff=True))

    url = reverse("analytics_reports:campaign", args=[world.campaign.pk])

    assert client.get(url).status_code == 403


def test_anonymous_visitors_go_to_the_login(client, world):
    response = client.get(reverse("analytics_reports:campaign", args=[world.campaign.pk]))

    assert response.status_code == 302
    assert "login" in response["Location"]


def test_campaign_report_page_draws_day_charts_and_step_funnels_offline(staff_client, world):
    url = reverse("analytics_reports:campaign", args=[world.campaign.pk])

    html = staff_client.get(url).content.decode()

    assert 'id="chart-days"' in html and 'id="chart-revenue"' in html
    assert html.count("<polyline") >= 5  # targeted, sent, opened, converted; revenue
    assert "Funnel of 1. Offer" in html and "Funnel of 2. Reminder" in html
    for external in ("cdn.", "googleapis", "unpkg", "jsdelivr"):
        assert external not in html
    assert reverse("admin:campaigns_campaign_change", args=[world.campaign.pk]) in html


def test_export_buttons_download_the_report_over_the_pages_range(client, world):
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    url = reverse("analytics_reports:campaign", args=[world.campaign.pk])

    exports = dict(client.get(url).context["exports"])

    assert set(exports) == {"CSV", "Excel", "JSON"}
    assert "since=2026-03-02" in exports["CSV"]
    response = client.get(exports["JSON"])
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json()[0]["sent"] == 6

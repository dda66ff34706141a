"""The analytics dashboard in the admin: journey map, top campaigns and delivery health, drawn
as local SVG charts, for those allowed to see it, linked from the admin index."""

import re

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from analytics import dashboard_charts as charts
from analytics.roles import ANALYST, MARKETER
from analytics.rollups import rollups_rebuild
from audiences.models import StageTransition
from tests.analytics.rollup_data import D1, D2, at, campaign_world

pytestmark = pytest.mark.django_db

RANGE = {"since": "2026-03-01", "until": "2026-03-04"}


def member(name: str, *groups: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.set(Group.objects.filter(name__in=groups))
    return user


@pytest.fixture
def world():
    world = campaign_world()
    c = world.customers
    StageTransition.objects.create(customer=c["c1"], from_stage="awareness",
                                   to_stage="engagement", at=at(D1, 11), cause="app_open")
    StageTransition.objects.create(customer=c["c4"], from_stage="engagement",
                                   to_stage="conversion", at=at(D2, 8), cause="purchase")
    rollups_rebuild(since=D1, until=D2)
    return world


@pytest.fixture
def analyst_client(client):
    client.force_login(member("ann", ANALYST))
    return client


def test_the_dashboard_shows_the_journey_the_campaigns_and_delivery_health(analyst_client,
                                                                           world):
    response = analyst_client.get(reverse("admin:analytics_dashboard"), RANGE)

    page = response.content.decode()
    assert response.status_code == 200
    for section in ("stage-flow", "stages-now", "transition-matrix", "entries-per-day",
                    "exits-per-day", "top-campaigns", "failures-by-reason", "dead-tokens"):
        assert f'id="{section}"' in page
    assert "Spring offer" in page  # the top campaign
    assert "dead_token" in page and "provider_rejected" in page  # failures by reason
    assert "Tokens deactivated per day (dead tokens)" in page


def test_every_chart_is_an_svg_in_the_page(analyst_client, world):
    page = analyst_client.get(reverse("admin:analytics_dashboard"), RANGE).content.decode()

    titles = re.findall(r'<svg class="jh-chart"[^>]*aria-label="([^"]+)"', page)
    assert set(titles) >= {
        "Moves between stages in the range", "Customers in each stage now",
        "Entries into each stage per day", "Exits from each stage per day",
        "Conversions by campaign", "Deliveries per day", "Failures by reason",
        "Skipped by reason", "Tokens deactivated per day (dead tokens)"}
    # A forward move and the days of the range are drawn.
    assert 'class="jh-flow forward"' in page
    assert "Mar 01" in page and "Mar 04" in page


def test_the_page_loads_nothing_from_elsewhere(analyst_client, world):
    page = analyst_client.get(reverse("admin:analytics_dashboard"), RANGE).content.decode()

    addresses = re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', page)
    assert addresses
    assert [a for a in addresses if re.match(r"(https?:)?//", a)] == []
    assert "@import" not in page and "cdn" not in page.lower()
    assert "/static/analytics/dashboard.css" in page


def test_a_marketer_sees_the_dashboard_but_staff_without_the_permission_do_not(client):
    client.force_login(member("mo", MARKETER))
    assert client.get(reverse("admin:analytics_dashboard")).status_code == 200

    client.force_login(member("vic"))
    assert client.get(reverse("admin:analytics_dashboard")).status_code == 403


def test_a_backwards_range_is_reported_and_the_default_range_shown(analyst_client):
    response = analyst_client.get(reverse("admin:analytics_dashboard"),
                                  {"since": "2026-03-04", "until": "2026-03-01"})

    assert response.status_code == 200
    assert "The last day is before the first day." in response.content.decode()


def test_a_range_over_a_year_is_refused(analyst_client):
    response = analyst_client.get(reverse("admin:analytics_dashboard"),
                                  {"since": "2020-01-01", "until": "2026-03-01"})

    assert "Choose at most 366 days." in response.content.decode()


def test_the_admin_index_links_to_the_dashboard_and_exports(client):
    client.force_login(member("ann", ANALYST))
    page = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:analytics_dashboard") in page
    assert reverse("admin:analytics_export") in page

    client.force_login(member("vic"))
    assert reverse("admin:analytics_dashboard") not in client.get(
        reverse("admin:index")).content.decode()


def test_chart_labels_are_escaped():
    svg = charts.bars([("<script>alert(1)</script>", 3)], title='a "title"')

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg and "&quot;title&quot;" in svg


def test_an_empty_chart_says_so():
    assert "No data" in charts.bars([], title="Failures by reason")

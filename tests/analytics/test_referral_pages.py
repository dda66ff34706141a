"""The referral report on its admin page, in the analyst API and as an export: the same
numbers as the selector gives for the history counted by hand."""

import csv
import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from rest_framework.test import APIClient

from analytics.exports import ExportFilter
from analytics.resources import report_export
from journeyhub.models import ApiKey
from journeyhub.services import api_key_create
from tests.analytics.referral_data import W1, W2, referral_world

pytestmark = pytest.mark.django_db
UNTIL = W2 + timedelta(days=6)
RANGE = {"since": str(W1), "until": str(UNTIL)}


@pytest.fixture
def world():
    return referral_world()


def test_the_page_shows_totals_weeks_referrers_and_charts(world, client):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(user)

    response = client.get(reverse("analytics_reports:referrals"), RANGE)

    assert response.status_code == 200
    html = response.content.decode()
    weeks = response.context["weeks"]
    assert [(w["signups"], w["per_referrer"], w["share"], w["k"]) for w in weeks] == [
        ("3", "1.50", "66.7%", "1.00"), ("1", "1.00", "0.0%", "0.00")]
    assert response.context["rates"]["share"] == "66.7%"
    for text in ("ref-a", "Viral coefficient (K) per week", "<polyline",
                 "Referral sign-up: referral_signup event", "rollups are refreshed every minute"):
        assert text in html, text
    bad = client.get(reverse("analytics_reports:referrals"),
                     {"since": str(UNTIL), "until": str(W1)})
    assert bad.status_code == 400


def test_the_api_gives_numbers_as_numbers(world):
    _, key = api_key_create(name="Analyst", scopes=[ApiKey.Scope.ANALYTICS_READ])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    body = api.get("/api/v1/analytics/referrals/", RANGE).json()

    assert (body["signups"], body["referred_conversions"], body["referred_revenue"]) == (
        4, 2, 60.0)
    assert body["referral_share"] == pytest.approx(4 / 6)
    assert [w["k_factor"] for w in body["weeks"]] == [pytest.approx(1.0), pytest.approx(0.0)]
    assert body["top_referrers"][0] == {"external_id": "ref-a", "name": "", "signups": 3,
                                        "converted": 1, "revenue": 40.0}
    assert api.get("/api/v1/analytics/referrals/", {"since": "nope"}).status_code == 400
    jmap = api.get("/api/v1/analytics/journey-map/", RANGE).json()
    assert jmap["advocacy_inflow"] == {"Referral sign-up: referral_signup event": 2,
                                       "Set by hand in the admin": 1}


def test_the_export_has_totals_weeks_referrers_and_inflow(world):
    filters = ExportFilter(since=W1, until=UNTIL)

    rows = json.loads(report_export(name="referrals", file_format="json", filters=filters))
    text = report_export(name="referrals", file_format="csv", filters=filters).decode()

    total = rows[0]
    assert (total["section"], total["signups"], total["referred_revenue"]) == ("total", 4, 60.0)
    assert [r["k_factor"] for r in rows if r["section"] == "week"] == [1.0, 0.0]
    assert [r["key"] for r in rows if r["section"] == "referrer"] == ["ref-a", "ref-b"]
    assert {r["label"]: r["transitions"] for r in rows if r["section"] == "advocacy_inflow"} \
        == {"Referral sign-up: referral_signup event": 2, "Set by hand in the admin": 1}
    weeks = [r for r in csv.DictReader(io.StringIO(text)) if r["section"] == "week"]
    assert [float(r["k_factor"]) for r in weeks] == [1.0, 0.0]

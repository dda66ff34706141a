"""The analyst API: read-only reports for API keys holding the analytics:read scope."""

import pytest
from rest_framework.test import APIClient

from analytics.rollups import rollups_refresh
from journeyhub.models import ApiKey
from tests.analytics.rollup_data import campaign_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst(key_factory) -> APIClient:
    _, key = key_factory(scopes=[ApiKey.Scope.ANALYTICS_READ])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def world():
    world = campaign_world()
    rollups_refresh()
    return world


def urls(campaign_id: int) -> list[str]:
    base = "/api/v1/analytics"
    return [f"{base}/campaigns/{campaign_id}/report/", f"{base}/campaigns/{campaign_id}/lift/",
            f"{base}/campaigns/{campaign_id}/report/days/", f"{base}/journey-map/",
            f"{base}/top-campaigns/", f"{base}/delivery-health/"]


def test_every_endpoint_needs_the_analytics_scope(key_factory, world):
    other_scopes = [s for s in ApiKey.Scope.values if s != ApiKey.Scope.ANALYTICS_READ]
    _, key = key_factory(scopes=other_scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")

    for url in urls(world.campaign.pk):
        response = client.get(url)
        assert response.status_code == 403, url
        assert "analytics:read" in response.json()["detail"]
        assert APIClient().get(url).status_code == 401


def test_every_endpoint_answers_an_analyst(analyst, world):
    for url in urls(world.campaign.pk):
        assert analyst.get(url).status_code == 200, url


def test_the_api_is_read_only(analyst, world):
    response = analyst.post(f"/api/v1/analytics/campaigns/{world.campaign.pk}/report/", {},
                            format="json")

    assert response.status_code == 405


def test_campaign_report_over_a_range(analyst, world):
    response = analyst.get(f"/api/v1/analytics/campaigns/{world.campaign.pk}/report/",
                           {"since": "2026-03-02", "until": "2026-03-03"})

    body = response.json()
    assert body["campaign_name"] == "Spring offer"
    totals = body["totals"]
    assert (totals["targeted"], totals["sent"], totals["opened"], totals["conversions"]) == (
        8, 6, 3, 2)
    assert totals["revenue"] == 50.0  # a number, not text
    assert totals["conversion_rate"] == pytest.approx(2 / 8)
    assert "conversion_rate" not in body  # one rate: the totals' own
    assert totals["skipped_by_reason"] == {"frequency_capped": 1, "opted_out": 1}
    assert [v["label"] for v in body["variants"]] == ["A", "B"]
    assert body["ab_tests"][0]["winner"] is None
    assert {p["key"] for p in body["platforms"]} == {"fcm", "apns", "webpush", "none"}


def test_lift_numbers(analyst, world):
    body = analyst.get(f"/api/v1/analytics/campaigns/{world.campaign.pk}/lift/").json()

    assert body["groups"]["treatment"]["rate"] == pytest.approx(2 / 6)
    assert body["groups"]["holdout"]["rate"] == pytest.approx(1 / 2)
    assert body["vs_holdout"]["absolute_lift"] == pytest.approx(2 / 6 - 1 / 2)
    assert body["vs_holdout"]["significant"] is False
    assert body["vs_control"] is None


def test_report_days_are_paged_by_keyset(analyst, world):
    url = f"/api/v1/analytics/campaigns/{world.campaign.pk}/report/days/"

    first = analyst.get(url, {"limit": 1}).json()
    second = analyst.get(first["next"]).json()

    assert [d["day"] for d in first["results"]] == ["2026-03-02"]
    assert "after=2026-03-02" in first["next"]
    assert [(d["day"], d["counts"]["sent"]) for d in second["results"]] == [("2026-03-03", 2)]
    last = analyst.get(second["next"]).json()
    assert (last["results"], last["next"]) == ([], None)


def test_journey_map_top_campaigns_and_health(analyst, world):
    jmap = analyst.get("/api/v1/analytics/journey-map/",
                       {"since": "2026-03-01", "until": "2026-03-07"}).json()
    top = analyst.get("/api/v1/analytics/top-campaigns/", {"limit": 1}).json()
    health = analyst.get("/api/v1/analytics/delivery-health/",
                         {"since": "2026-03-02", "until": "2026-03-02"}).json()

    assert len(jmap["days"]) == 7 and len(jmap["stages"]) == 5
    assert set(jmap["matrix"]) == {"awareness", "engagement", "conversion", "retention",
                                   "advocacy"}
    assert [(t["name"], t["counts"]["conversions"]) for t in top] == [("Spring offer", 2)]
    assert health["failed_by_reason"] == {"dead_token": 1, "provider_rejected": 1}
    assert health["days"] == [{"day": "2026-03-02", "sent": 4, "failed": 2, "skipped": 2,
                               "dead_tokens": 1}]


@pytest.mark.parametrize("path, params, field", [
    ("report/", {"since": "2026-02-30"}, "since"),
    ("report/", {"until": "yesterday"}, "until"),
    ("report/", {"since": "2026-03-05", "until": "2026-03-01"}, "until"),
    ("report/", {"since": "0001-01-01"}, "since"),
    ("report/", {"sinse": "2026-03-01"}, "sinse"),
    ("report/days/", {"limit": "0"}, "limit"),
    ("report/days/", {"after": "03/02/2026"}, "after"),
])
def test_bad_campaign_query_is_a_400_naming_the_field(analyst, world, path, params, field):
    response = analyst.get(f"/api/v1/analytics/campaigns/{world.campaign.pk}/{path}", params)

    assert response.status_code == 400
    assert field in response.json()["errors"]


@pytest.mark.parametrize("path, params, field", [
    ("journey-map/", {"since": "2025-01-01", "until": "2026-03-01"}, "until"),
    ("journey-map/", {"attribution_window_hours": "-1"}, "attribution_window_hours"),
    ("delivery-health/", {"until": "9999-12-31"}, "until"),
    ("top-campaigns/", {"limit": "1000"}, "limit"),
])
def test_bad_range_is_a_400_naming_the_field(analyst, path, params, field):
    response = analyst.get(f"/api/v1/analytics/{path}", params)

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_unknown_campaign_is_a_404(analyst):
    assert analyst.get("/api/v1/analytics/campaigns/999999/report/").status_code == 404


def test_the_schema_documents_the_analytics_endpoints(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]

    report = paths["/api/v1/analytics/campaigns/{campaign_id}/report/"]["get"]
    assert report["security"] == [{"ApiKey": []}]
    assert {"since", "until"} <= {p["name"] for p in report["parameters"]}
    assert {"200", "400", "403"} <= set(report["responses"])
    assert "/api/v1/analytics/journey-map/" in paths

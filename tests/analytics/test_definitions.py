"""One set of definitions: the open rate, the conversion rate and the lift are the same numbers
on the report page, in the analyst API and in every export (CSV, XLSX, JSON); conversions no
message was credited to are counted apart; no data is null in JSON and an empty cell elsewhere.

The history is tests/analytics/rollup_data.py's, counted by hand, plus c6 (skipped, never sent
anything) converting for 7.50 on D2."""

import csv
import io
import json
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from rest_framework.test import APIClient

from analytics.exports import ExportFilter
from analytics.resources import report_export
from analytics.rollups import rollups_refresh
from campaigns.models import Enrollment
from journeyhub.models import ApiKey
from journeyhub.services import api_key_create
from tests.analytics.rollup_data import D1, D2, at, campaign_world, convert

pytestmark = pytest.mark.django_db

# Totals by hand: 8 customers targeted (6 by step 1, 2 by step 2), 6 sent, 3 opened, 2
# conversions credited to a message (30.00 + 20.00); c6's conversion has no message.
OPEN_RATE, CONVERSION_RATE = 3 / 6, 2 / 8
TREATMENT_RATE, HOLDOUT_RATE = 3 / 6, 1 / 2  # lift: conversions / enrolled, all treatment


@pytest.fixture
def world():
    world = campaign_world()
    c6 = Enrollment.objects.get(campaign=world.campaign, customer=world.customers["c6"])
    convert(c6, Decimal("7.50"), at(D2, 11))
    rollups_refresh()
    return world


def export(world, file_format: str) -> bytes:
    return report_export(name="campaign_report", file_format=file_format,
                         filters=ExportFilter(since=D1, until=D2, campaign_id=world.campaign.pk))


def test_conversions_without_a_message_are_counted_apart(world):
    rows = json.loads(export(world, "json"))
    total = rows[0]

    assert (total["conversions"], total["revenue"]) == (2, 50.0)
    assert (total["untargeted_conversions"], total["untargeted_revenue"]) == (1, 7.5)
    assert total["conversion_rate"] == pytest.approx(CONVERSION_RATE)


def test_json_writes_numbers_as_numbers_and_no_data_as_null(world):
    rows = json.loads(export(world, "json"))

    total = rows[0]
    assert isinstance(total["sent"], int) and isinstance(total["open_rate"], float)
    assert total["open_rate"] == pytest.approx(OPEN_RATE)
    platform_none = next(r for r in rows if r["breakdown"] == "platform" and r["key"] == "none")
    assert platform_none["open_rate"] is None  # nothing sent: no rate
    assert platform_none["targeted"] is None  # customers are not counted per device
    assert total["computed_at"].endswith("+00:00")


def test_page_api_csv_xlsx_and_json_agree(world, client, tmp_path):
    # the page
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(user)
    page = client.get(reverse("analytics_reports:campaign", args=[world.campaign.pk]),
                      {"since": str(D1), "until": str(D2)}).context
    # the API
    _, key = api_key_create(name="Analyst", scopes=[ApiKey.Scope.ANALYTICS_READ])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    body = api.get(f"/api/v1/analytics/campaigns/{world.campaign.pk}/report/",
                   {"since": str(D1), "until": str(D2)}).json()
    lift = api.get(f"/api/v1/analytics/campaigns/{world.campaign.pk}/lift/").json()
    # the exports
    csv_rows = list(csv.DictReader(io.StringIO(export(world, "csv").decode())))
    json_rows = json.loads(export(world, "json"))
    path = tmp_path / "report.xlsx"
    path.write_bytes(export(world, "xlsx"))
    sheet = openpyxl.load_workbook(path).active
    header = [c.value for c in sheet[1]]
    xlsx_rows = [dict(zip(header, [c.value for c in row], strict=True))
                 for row in sheet.iter_rows(min_row=2)]

    assert page["totals_rows"][0]["conversion_rate"] == f"{CONVERSION_RATE * 100:.1f}%"
    assert page["totals_rows"][0]["open_rate"] == f"{OPEN_RATE * 100:.1f}%"
    assert body["totals"]["conversion_rate"] == pytest.approx(CONVERSION_RATE)
    assert body["totals"]["open_rate"] == pytest.approx(OPEN_RATE)
    for rows in (csv_rows, json_rows, xlsx_rows):
        assert float(rows[0]["conversion_rate"]) == pytest.approx(CONVERSION_RATE)
        assert float(rows[0]["open_rate"]) == pytest.approx(OPEN_RATE)
        treatment = next(r for r in rows if r["breakdown"] == "lift" and r["key"] == "treatment")
        assert float(treatment["group_rate"]) == pytest.approx(TREATMENT_RATE)
        vs_holdout = next(r for r in rows if r["key"] == "vs_holdout")
        assert float(vs_holdout["absolute_lift"]) == pytest.approx(
            lift["vs_holdout"]["absolute_lift"])
    assert lift["groups"]["treatment"]["rate"] == pytest.approx(TREATMENT_RATE)
    assert lift["groups"]["holdout"]["rate"] == pytest.approx(HOLDOUT_RATE)
    assert page["lift_groups"][0]["rate"] == f"{TREATMENT_RATE * 100:.2f}%"
    # Per step too: step 1 targeted 6 and got both credited conversions.
    step1 = world.step1.pk
    api_step = next(s for s in body["steps"] if s["step_id"] == step1)
    assert api_step["counts"]["conversion_rate"] == pytest.approx(2 / 6)
    assert page["steps"][0]["conversion_rate"] == "33.3%"
    assert float(next(r for r in csv_rows if r["key"] == f"step:{step1}")["conversion_rate"]) \
        == pytest.approx(2 / 6)


def test_a_cell_without_data_is_empty_on_the_page_and_in_csv_and_xlsx(world, client, tmp_path):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(user)
    page = client.get(reverse("analytics_reports:campaign", args=[world.campaign.pk])).context
    path = tmp_path / "report.xlsx"
    path.write_bytes(export(world, "xlsx"))
    sheet = openpyxl.load_workbook(path).active
    header = [c.value for c in sheet[1]]
    xlsx_none = next(dict(zip(header, [c.value for c in row], strict=True))
                     for row in sheet.iter_rows(min_row=2)
                     if row[header.index("key")].value == "none")
    csv_none = next(r for r in csv.DictReader(io.StringIO(export(world, "csv").decode()))
                    if r["key"] == "none")

    page_none = next(r for r in page["platforms"] if r["label"] == "none")
    assert page_none["open_rate"] == page_none["targeted"] == ""
    api_none = next(p for p in _api_report(world)["platforms"] if p["key"] == "none")["counts"]
    assert api_none["open_rate"] is None and api_none["targeted"] is None
    assert xlsx_none["open_rate"] is None and xlsx_none["targeted"] is None
    assert csv_none["open_rate"] == csv_none["targeted"] == ""


def _api_report(world) -> dict:
    _, key = api_key_create(name="Analyst", scopes=[ApiKey.Scope.ANALYTICS_READ])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return api.get(f"/api/v1/analytics/campaigns/{world.campaign.pk}/report/").json()

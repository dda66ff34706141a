"""The export pages in the admin: who may use them, what they send back, the links to them."""

import csv
import io
import json

import openpyxl
import pytest
from django.contrib.auth.models import Group, Permission, User
from django.http import StreamingHttpResponse
from django.urls import reverse

from analytics import exports
from tests.analytics.export_data import export_history

pytestmark = pytest.mark.django_db

MARCH = {"since": "2026-03-01", "until": "2026-03-31"}


@pytest.fixture
def history():
    return export_history()


def staff(name: str, *groups: str, perms: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    user.groups.set(Group.objects.filter(name__in=groups))
    for dotted in perms:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app_label,
                                                         codename=codename))
    return user


@pytest.fixture
def analyst_client(client):
    client.force_login(staff("ann", "Analyst"))
    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_an_analyst_gets_the_form(analyst_client):
    response = analyst_client.get(reverse("admin:analytics_export") + "?dataset=events")

    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="since"' in page and 'name="campaign"' in page
    assert '<option value="events" selected>' in page


def test_staff_without_the_export_permission_are_refused(client, history):
    client.force_login(staff("mo", "Marketer"))

    assert client.get(reverse("admin:analytics_export")).status_code == 403
    response = client.get(reverse("admin:analytics_export"),
                          {"export": "1", "dataset": "deliveries", "format": "csv", **MARCH})
    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_the_login(client):
    response = client.get(reverse("admin:analytics_export"))

    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_export_streams_a_csv_attachment(analyst_client, history):
    response = analyst_client.get(reverse("admin:analytics_export"), {
        "export": "1", "dataset": "deliveries", "format": "csv", **MARCH,
        "campaign": history.campaign.pk})

    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="deliveries-campaign-{history.campaign.pk}-2026-03-01-'
        '2026-03-31.csv"')
    rows = list(csv.reader(io.StringIO(body(response).decode())))
    assert sorted(int(row[0]) for row in rows[1:]) == [history.deliveries[0].pk,
                                                      history.deliveries[1].pk]


def test_events_stream_as_json(analyst_client, history):
    response = analyst_client.get(reverse("admin:analytics_export"), {
        "export": "1", "dataset": "events", "format": "json", **MARCH})

    records = sorted(json.loads(body(response)), key=lambda r: r["id"])
    assert [r["name"] for r in records] == ["purchase", "app_open", "note"]


def test_a_backwards_range_is_a_form_error(analyst_client, history):
    response = analyst_client.get(reverse("admin:analytics_export"), {
        "export": "1", "dataset": "events", "format": "csv",
        "since": "2026-03-31", "until": "2026-03-01"})

    assert response.status_code == 200
    assert "The last day is before the first day." in response.content.decode()


def test_too_many_rows_for_excel_is_a_form_error(analyst_client, history, monkeypatch):
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 2)  # Excel's 1,048,575 rows, made small

    response = analyst_client.get(reverse("admin:analytics_export"), {
        "export": "1", "dataset": "deliveries", "format": "xlsx", **MARCH})

    assert response.status_code == 200
    assert "do not fit in an Excel sheet" in response.content.decode()


@pytest.mark.parametrize("url", ["admin:notifications_delivery_changelist",
                                 "admin:audiences_event_changelist"])
def test_the_lists_link_to_the_export_for_those_who_may_export(client, url):
    link = reverse("admin:analytics_export")
    client.force_login(staff("ann", "Analyst"))
    assert link in client.get(reverse(url)).content.decode()

    client.force_login(staff("vic", perms=("notifications.view_delivery",
                                           "audiences.view_event")))
    page = client.get(reverse(url))
    assert page.status_code == 200 and link not in page.content.decode()


def test_a_campaign_report_downloads_as_csv(analyst_client, history):
    response = analyst_client.get(reverse("admin:analytics_report_export"), {
        "export": "1", "report": "campaign_report", "format": "csv", **MARCH,
        "campaign": history.campaign.pk})

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="campaign_report-')
    header, first = response.content.decode().splitlines()[:2]
    assert header.startswith("campaign_id,campaign,since,until,breakdown,key,label,targeted,")
    assert first.startswith(f"{history.campaign.pk},Spring offer,2026-03-01,2026-03-31,total,")


def test_a_journey_map_with_a_campaign_is_a_form_error(analyst_client, history):
    response = analyst_client.get(reverse("admin:analytics_report_export"), {
        "export": "1", "report": "journey_map", "format": "xlsx", **MARCH,
        "campaign": history.campaign.pk})

    assert response.status_code == 200
    assert "takes no campaign" in response.content.decode()


def test_an_xlsx_export_is_a_workbook(analyst_client, history, tmp_path):
    response = analyst_client.get(reverse("admin:analytics_export"), {
        "export": "1", "dataset": "deliveries", "format": "xlsx", **MARCH})

    assert response["Content-Type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml")
    path = tmp_path / "export.xlsx"
    path.write_bytes(body(response))
    sheet = openpyxl.load_workbook(path).active
    assert sheet.max_row == 4 and sheet["G1"].value == "customer"

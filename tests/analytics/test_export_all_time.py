"""The export pages: date pickers that work (the admin's scripts are on the page) and "All
time" instead of a range."""

import csv
import io

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from analytics.exports import DATASETS, ExportFilter
from tests.analytics.export_data import export_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def analyst_client(client):
    user = User.objects.create_user("ann", is_staff=True)
    user.groups.set(Group.objects.filter(name="Analyst"))
    client.force_login(user)
    return client


@pytest.mark.parametrize("page", ["admin:analytics_export", "admin:analytics_report_export"])
def test_the_pages_carry_the_date_pickers_scripts_and_all_time(analyst_client, page):
    html = analyst_client.get(reverse(page)).content.decode()

    assert reverse("admin:jsi18n") in html and "admin/js/core.js" in html
    assert "admin/js/admin/DateTimeShortcuts.js" in html and 'class="vDateField"' in html
    assert 'name="all_time"' in html


def test_all_time_exports_every_row(analyst_client):
    export_history()
    everything = DATASETS["deliveries"].queryset(ExportFilter()).count()

    response = analyst_client.get(reverse("admin:analytics_export"), {
        "export": "1", "dataset": "deliveries", "format": "csv", "all_time": "on"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response.status_code == 200 and everything > 0
    assert len(rows) - 1 == everything


def test_no_days_and_not_all_time_is_a_form_error(analyst_client):
    response = analyst_client.get(reverse("admin:analytics_export"), {
        "export": "1", "dataset": "deliveries", "format": "csv"})

    assert response.status_code == 200
    assert "Choose a day, or tick “All time”." in response.content.decode()

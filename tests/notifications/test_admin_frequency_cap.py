"""The frequency cap in the admin reads and is entered as "2 per 7 days"."""

import pytest
from django.urls import reverse

from notifications.admin_delivery import cap_text
from notifications.models import DeliverySettings

pytestmark = pytest.mark.django_db


def page_url() -> str:
    return reverse("admin:notifications_deliverysettings_change",
                   args=[DeliverySettings.load().pk])


def form(**fields) -> dict:
    return {"frequency_cap": "2", "window_days": "7", "window_hours": "0",
            "quiet_hours_start": "21:00", "quiet_hours_end": "08:00",
            "default_time_zone": "UTC", "control_group_percent": "0", **fields}


def test_the_cap_is_entered_in_days_and_hours(admin_client):
    response = admin_client.post(page_url(), form(default_time_zone="Europe/Lisbon",
                                                  control_group_percent="5"))

    assert response.status_code == 302
    controls = DeliverySettings.load()
    assert (controls.frequency_cap, controls.frequency_window_hours) == (2, 168)
    assert (controls.default_time_zone, str(controls.control_group_percent)) == (
        "Europe/Lisbon", "5.00")
    assert "2 per 7 days" in admin_client.get(page_url()).content.decode()


def test_a_window_shorter_than_an_hour_is_refused(admin_client):
    page = admin_client.post(page_url(), form(window_days="0", window_hours="")).content.decode()
    assert "The window must be at least an hour." in page
    assert DeliverySettings.load().frequency_window_hours == 24


@pytest.mark.parametrize(("count", "hours", "text"), [
    (2, 168, "2 per 7 days"), (3, 24, "3 per 1 day"), (1, 36, "1 per 1 day 12 hours"),
    (5, 5, "5 per 5 hours"), (0, 24, "Off"),
])
def test_cap_text(count, hours, text):
    assert cap_text(count, hours) == text

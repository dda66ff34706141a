"""Live reports: the rollups refresh every minute, every report says when its numbers were
computed, staff can refresh at once, and a send's numbers show within 90 s of it finishing."""

import time as clock
from datetime import UTC, time

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.models import RollupState
from analytics.reports import computed_at, delivery_health
from analytics.rollups import rollups_refresh
from audiences.services import customer_upsert
from journeyhub.models import ApiKey
from journeyhub.schedules import SYSTEM_TASKS
from journeyhub.services import api_key_create
from notifications.models import DeliveryBatch, DeliverySettings, Send, Template
from notifications.providers import locmem
from notifications.sending.batch_send import batch_send
from notifications.services import device_register, send_create, send_fan_out
from tests.analytics.rollup_data import campaign_world

pytestmark = pytest.mark.django_db
VISIBLE_WITHIN_S = 90  # after a send finishes, its numbers are in the reports by then


@pytest.fixture
def viewer(client):
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(user)
    return client


def test_the_refresh_runs_every_minute_and_never_piles_up():
    task = next(t for t in SYSTEM_TASKS if t.task == "analytics.tasks.rollups_refresh")

    assert task.crontab == "* * * * *"
    assert task.expires_seconds < 60


def test_a_finished_send_shows_in_the_next_refresh_well_within_90_seconds(settings):
    # given: the rollups were refreshed, then a send went out and finished
    rollups_refresh()
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    DeliverySettings.objects.update_or_create(
        pk=1, defaults={"quiet_hours_start": time(0), "quiet_hours_end": time(0)})
    people = []
    for n in range(3):
        person, _ = customer_upsert(external_id=f"live-{n}")
        device_register(customer=person, kind="fcm", platform="android",
                        token=f"fcm-token-of-live-{n}-0123456789abcdef")
        people.append(person.pk)
    send = send_create(template=Template.objects.create(name="Live", title="Hi", body="There"),
                       customer_ids=people)
    send_fan_out(send_id=send.pk)
    batch_send(batch_id=DeliveryBatch.objects.get(send=send).pk)
    assert Send.objects.get(pk=send.pk).finished_at is not None

    # when: the next minute's refresh runs
    started = clock.perf_counter()
    rollups_refresh()
    took = clock.perf_counter() - started

    # then: the send is in the numbers; at worst it waited a minute for the tick, plus the run
    today = timezone.now().date()
    assert delivery_health(since=today, until=today).sent == 3
    assert 60 + took < VISIBLE_WITHIN_S


def test_pages_and_api_say_when_the_numbers_were_computed(viewer):
    world = campaign_world()
    rollups_refresh()
    stamp = RollupState.objects.get(pk=1).refreshed_at
    _, key = api_key_create(name="Analyst", scopes=[ApiKey.Scope.ANALYTICS_READ])
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    base = "/api/v1/analytics"

    assert computed_at() == stamp
    for url in (f"{base}/campaigns/{world.campaign.pk}/report/",
                f"{base}/campaigns/{world.campaign.pk}/report/days/",
                f"{base}/campaigns/{world.campaign.pk}/lift/", f"{base}/journey-map/",
                f"{base}/delivery-health/"):
        response = api.get(url)
        assert response.json()["computed_at"] is not None, url
        assert response["X-Computed-At"] == stamp.isoformat(), url
    assert api.get(f"{base}/top-campaigns/")["X-Computed-At"] == stamp.isoformat()
    shown = f"Numbers computed at {stamp.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    for url in (reverse("analytics_reports:campaign", args=[world.campaign.pk]),
                reverse("analytics_reports:index")):
        assert shown in viewer.get(url).content.decode(), url
    viewer.force_login(User.objects.create_superuser("boss", password="pw"))
    assert shown in viewer.get(reverse("admin:analytics_dashboard")).content.decode()


def test_refresh_now_brings_the_numbers_up_to_date_and_returns(viewer):
    world = campaign_world()
    report_url = reverse("analytics_reports:campaign", args=[world.campaign.pk])
    assert viewer.get(report_url).context["totals_rows"][0]["sent"] == "0"

    response = viewer.post(reverse("analytics_reports:refresh"), {"next": report_url})

    assert response.status_code == 302 and response["Location"] == report_url
    assert viewer.get(report_url).context["totals_rows"][0]["sent"] == "6"
    assert computed_at() is not None


def test_refresh_now_never_redirects_elsewhere_and_needs_a_post(viewer):
    response = viewer.post(reverse("analytics_reports:refresh"),
                           {"next": "https://evil.example/"})

    assert response["Location"] == reverse("analytics_reports:index")
    assert viewer.get(reverse("analytics_reports:refresh")).status_code == 405

"""A campaign's delivery controls hold across the sends it makes, and it is completed only
when those sends are finished."""

from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse
from freezegun import freeze_time

from campaigns.engine.enrollments import enrollments_enter_audience
from campaigns.engine.tick import enrollments_advance
from campaigns.models import Campaign
from campaigns.services import journeys_tick
from notifications.models import Delivery, DeliverySettings, Send
from notifications.providers import locmem
from tests.campaigns import engine_kit
from tests.campaigns.engine_kit import campaign, deliver, person, send, sends_of, template

pytestmark = pytest.mark.django_db
outbox = engine_kit.outbox  # fixture
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo, 12:00 in London


def test_a_campaign_throttle_holds_across_its_tick_batches(outbox):
    """Thirty customers advanced in three tick batches make three sends; the campaign's 10 a
    minute holds across them."""
    for i in range(30):
        person(f"c{i:02}")
    blast = campaign("Blast", kind=Campaign.Kind.BROADCAST, throttle_per_minute=10,
                     steps=[send(template("Blast"))])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=blast)
        for _ in range(3):
            enrollments_advance(limit=10)
        sends = list(sends_of(blast))
        assert len(sends) == 3
        assert {s.throttle_key for s in sends} == {f"campaign:{blast.pk}"}
        deliver(sends)
        assert len(locmem.outbox) == 10
    for minute in (1, 2):
        with freeze_time(T0 + timedelta(minutes=minute)):
            deliver(sends)
            assert len(locmem.outbox) == 10 * (minute + 1)


def test_a_broadcast_is_completed_only_when_its_send_is_finished(outbox):
    DeliverySettings.objects.filter(pk=1).update(quiet_hours_start=time(21, 0),
                                                quiet_hours_end=time(8, 0))
    person("owl", time_zone="Asia/Tokyo")  # quiet hours: deferred to 08:00 there (23:00 UTC)
    person("lark", time_zone="Europe/London")
    blast = campaign("Blast", kind=Campaign.Kind.BROADCAST, steps=[send(template("Blast"))])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=blast)
        journeys_tick()
        deliver(sends_of(blast))
        journeys_tick()
    blast.refresh_from_db()
    assert blast.status == Campaign.Status.RUNNING  # every enrollment exited, one row queued
    assert sends_of(blast).get().status == Send.Status.SENDING

    with freeze_time(T0 + timedelta(hours=11, minutes=1)):
        deliver(sends_of(blast))
        journeys_tick()
    blast.refresh_from_db()
    assert blast.status == Campaign.Status.COMPLETED
    assert Delivery.objects.filter(send__in=sends_of(blast), status="sent").count() == 2


def test_the_campaign_kind_is_recorded_on_its_sends_for_the_per_kind_caps(outbox):
    person("ana")
    blast = campaign("Blast", kind=Campaign.Kind.BROADCAST, steps=[send(template("Blast"))])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=blast)
        journeys_tick()
    assert sends_of(blast).get().campaign_kind == "broadcast"


# --- Quiet hours and local-time delivery per campaign ----------------------------------------

DST_DAY = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)  # New York springs forward at 02:00 local
NINE_LOCAL = {  # 09:00 local next, as the broadcast launches at DST_DAY
    "America/New_York": datetime(2026, 3, 8, 13, 0, tzinfo=UTC),
    "Europe/Lisbon": datetime(2026, 3, 8, 9, 0, tzinfo=UTC),
    "America/Los_Angeles": datetime(2026, 3, 8, 16, 0, tzinfo=UTC),
    "Asia/Tokyo": datetime(2026, 3, 9, 0, 0, tzinfo=UTC),
    "Australia/Sydney": datetime(2026, 3, 8, 22, 0, tzinfo=UTC),
}


def _people_in_zones():
    return {zone: person(zone.split("/")[1], time_zone=zone) for zone in NINE_LOCAL}


def test_a_broadcast_at_nine_in_each_customers_zone(outbox):
    people = _people_in_zones()
    blast = campaign("Morning", kind=Campaign.Kind.BROADCAST, local_send_time=time(9, 0),
                     steps=[send(template("Morning"))])
    with freeze_time(DST_DAY):
        enrollments_enter_audience(campaign=blast)
        journeys_tick()
        deliver(sends_of(blast))
    rows = {d.customer_id: d.not_before for d in
            Delivery.objects.filter(send__in=sends_of(blast))}
    assert {zone: rows[c.pk] for zone, c in people.items()} == NINE_LOCAL
    assert not outbox
    with freeze_time(datetime(2026, 3, 8, 13, 0, tzinfo=UTC)):
        deliver(sends_of(blast))
    assert len(outbox) == 2  # Lisbon at 09:00 UTC, New York at 13:00 UTC (EDT)


def test_a_recurring_run_can_skip_customers_whose_time_passed(outbox):
    people = _people_in_zones()
    weekly = campaign("Weekly", kind=Campaign.Kind.RECURRING, crontab="0 6 * * 0",
                      local_send_time=time(9, 0), local_time_passed="skip",
                      steps=[send(template("Weekly"))])
    with freeze_time(DST_DAY):
        enrollments_enter_audience(campaign=weekly)
        journeys_tick()
        deliver(sends_of(weekly))
    reasons = {d.customer_id: (d.status, d.reason)
               for d in Delivery.objects.filter(send__in=sends_of(weekly))}
    assert {zone: reasons[c.pk] for zone, c in people.items()} == {
        "America/New_York": ("queued", "local_time_scheduled"),
        "Europe/Lisbon": ("queued", "local_time_scheduled"),
        "America/Los_Angeles": ("skipped", "local_time_passed"),
        "Asia/Tokyo": ("skipped", "local_time_passed"),
        "Australia/Sydney": ("skipped", "local_time_passed"),
    }


def test_a_campaigns_own_quiet_window_reaches_its_sends(outbox):
    person("ana", time_zone="Europe/London")
    blast = campaign("Evening", kind=Campaign.Kind.BROADCAST, quiet_hours_start=time(18, 0),
                     quiet_hours_end=time(9, 0), steps=[send(template("Evening"))])
    with freeze_time(datetime(2026, 1, 15, 19, 0, tzinfo=UTC)):
        enrollments_enter_audience(campaign=blast)
        journeys_tick()
        deliver(sends_of(blast))
    row = Delivery.objects.get(send__in=sends_of(blast))
    assert (row.reason, row.not_before) == ("quiet_hours_deferred",
                                            datetime(2026, 1, 16, 9, 0, tzinfo=UTC))


def test_the_preview_lists_who_a_strict_template_would_skip(admin_client, outbox):
    person("ana", attributes={"driver": "Rui"})
    person("ben")
    strict = template("Rate", body="Rate your ride with {{ customer.attributes.driver }}",
                      strict=True)
    blast = campaign("Rate rides", kind=Campaign.Kind.BROADCAST, steps=[send(strict)])

    page = admin_client.get(reverse("admin:campaigns_campaign_change", args=[blast.pk]))

    text = page.content.decode()
    assert "1 of the first 2 customers would be skipped" in text
    assert "ben</a>: strict template: no value for customer.attributes.driver" in text
    assert ">ana</a>" not in text

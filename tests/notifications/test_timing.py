"""When deliveries go: the delivery's time zone (device, else customer, else the workspace
default), quiet hours per send, and local-time delivery set in SQL at fan-out."""

from datetime import UTC, datetime, time, timedelta

import pytest
from freezegun import freeze_time

from audiences.models import Customer
from audiences.services import customer_upsert
from notifications.models import Delivery, DeliveryBatch, DeliverySettings, Template
from notifications.services import device_register, send_create, send_fan_out

pytestmark = pytest.mark.django_db

# Sunday 8 March 2026, 06:00 UTC: New York is at 01:00 EST and springs forward to EDT at 02:00.
DST_DAY = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def quiet_21_to_8():
    DeliverySettings.objects.update_or_create(pk=1, defaults={
        "quiet_hours_start": time(21, 0), "quiet_hours_end": time(8, 0), "frequency_cap": 0})


@pytest.fixture
def offer():
    return Template.objects.create(name="Offer", title="Hi", body="20% off")


def person(external_id, zone="UTC", device_zone=""):
    customer, _ = customer_upsert(external_id=external_id, time_zone=zone)
    device_register(customer=customer, kind="fcm", token=f"{external_id}-fcm",
                    platform="android", time_zone=device_zone)
    return customer


def fanned_out(template, customers, **options):
    send = send_create(template=template, customer_ids=[c.pk for c in customers], **options)
    send_fan_out(send_id=send.pk)
    return send


def timing(send):
    return {d.customer.external_id: (d.status, d.reason, d.not_before)
            for d in Delivery.objects.filter(send=send).select_related("customer")}


# --- 7. The delivery's time zone ---------------------------------------------------------------


def test_the_devices_zone_wins_over_the_customers_for_quiet_hours(offer):
    at = datetime(2026, 1, 15, 11, 37, tzinfo=UTC)  # 22:37 in Sydney, 11:37 in UTC
    with freeze_time(at):
        traveller = person("traveller", zone="UTC", device_zone="Australia/Sydney")
        home = person("home", zone="UTC")
        send = fanned_out(offer, [traveller, home])
    assert timing(send) == {
        "traveller": ("queued", "quiet_hours_deferred",
                      datetime(2026, 1, 15, 21, 0, tzinfo=UTC)),  # 08:00 in Sydney (AEDT)
        "home": ("queued", "", None),
    }


def test_the_workspace_default_zone_applies_when_neither_device_nor_customer_has_one(offer):
    DeliverySettings.objects.filter(pk=1).update(default_time_zone="Asia/Tokyo")
    at = datetime(2026, 1, 15, 13, 0, tzinfo=UTC)  # 22:00 in Tokyo
    with freeze_time(at):
        unknown = person("unknown")
        Customer.objects.filter(pk=unknown.pk).update(time_zone="")  # as an old import left it
        send = fanned_out(offer, [unknown])
    assert timing(send)["unknown"] == ("queued", "quiet_hours_deferred",
                                       datetime(2026, 1, 15, 23, 0, tzinfo=UTC))


# --- 8. Quiet hours per send ------------------------------------------------------------------


def test_a_send_with_its_own_quiet_window_or_none(offer):
    at = datetime(2026, 1, 15, 19, 0, tzinfo=UTC)  # 19:00 in London: outside 21-08
    with freeze_time(at):
        ana = person("ana", zone="Europe/London")
        own = fanned_out(offer, [ana], quiet_hours=(time(18, 0), time(9, 0)))
        none = fanned_out(offer, [ana], respect_quiet_hours=False,
                          quiet_hours=(time(18, 0), time(9, 0)))
        inherited = fanned_out(offer, [ana])
    assert timing(own)["ana"] == ("queued", "quiet_hours_deferred",
                                  datetime(2026, 1, 16, 9, 0, tzinfo=UTC))
    assert timing(none)["ana"] == ("queued", "", None)
    assert timing(inherited)["ana"] == ("queued", "", None)


def test_an_own_window_needs_both_ends(offer):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as error:
        send_create(template=offer, customer_ids=[], quiet_hours=(time(22, 0), None))
    assert "both its start and its end" in str(error.value)


# --- 9. Local-time delivery -------------------------------------------------------------------


ZONES = {  # zone: (local time at DST_DAY, 09:00 local next, in UTC)
    "America/New_York": datetime(2026, 3, 8, 13, 0, tzinfo=UTC),  # 01:00 EST; 09:00 is EDT
    "Europe/Lisbon": datetime(2026, 3, 8, 9, 0, tzinfo=UTC),  # 06:00
    "America/Los_Angeles": datetime(2026, 3, 8, 16, 0, tzinfo=UTC),  # 22:00 Sat: passed; PDT
    "Asia/Tokyo": datetime(2026, 3, 9, 0, 0, tzinfo=UTC),  # 15:00: passed
    "Asia/Kolkata": datetime(2026, 3, 9, 3, 30, tzinfo=UTC),  # 11:30: passed
    "Australia/Sydney": datetime(2026, 3, 8, 22, 0, tzinfo=UTC),  # 17:00: passed
}
PASSED = {"America/Los_Angeles", "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney"}


def test_a_local_time_send_goes_at_that_time_in_each_zone_across_a_dst_change(offer):
    with freeze_time(DST_DAY):
        people = [person(zone.split("/")[1], zone=zone) for zone in ZONES]
        send = fanned_out(offer, people, local_time=time(9, 0))
    rows = timing(send)
    for zone, expected in ZONES.items():
        assert rows[zone.split("/")[1]] == ("queued", "local_time_scheduled", expected), zone
    # One batch per moment, each due at its zone's 09:00.
    assert sorted(DeliveryBatch.objects.filter(send=send).values_list("not_before", flat=True)
                  ) == sorted(ZONES.values())


def test_customers_whose_local_time_passed_can_be_skipped(offer):
    with freeze_time(DST_DAY):
        people = [person(zone.split("/")[1], zone=zone) for zone in ZONES]
        send = fanned_out(offer, people, local_time=time(9, 0), local_time_passed="skip")
    rows = timing(send)
    for zone, expected in ZONES.items():
        name = zone.split("/")[1]
        if zone in PASSED:
            assert rows[name] == ("skipped", "local_time_passed", None), zone
        else:
            assert rows[name] == ("queued", "local_time_scheduled", expected), zone
    assert DeliveryBatch.objects.filter(send=send).count() == 2


def test_a_local_time_in_quiet_hours_waits_for_their_end_and_one_past_the_expiry_is_skipped(
        offer):
    with freeze_time(DST_DAY):
        lisbon = person("lisbon", zone="Europe/Lisbon")  # 06:00 now
        late = fanned_out(offer, [lisbon], local_time=time(22, 30))  # inside 21-08
        flash = fanned_out(offer, [lisbon], local_time=time(9, 0),
                           expires_at=DST_DAY + timedelta(hours=1))
    assert timing(late)["lisbon"] == ("queued", "quiet_hours_deferred",
                                      datetime(2026, 3, 9, 8, 0, tzinfo=UTC))
    assert timing(flash)["lisbon"][:2] == ("skipped", "expired")


def test_the_device_zone_decides_the_local_time_too(offer):
    with freeze_time(DST_DAY):
        visitor = person("visitor", zone="Europe/Lisbon", device_zone="America/New_York")
        send = fanned_out(offer, [visitor], local_time=time(9, 0))
    assert timing(send)["visitor"][2] == ZONES["America/New_York"]


def test_the_send_command_takes_a_local_time_and_an_own_quiet_window(offer):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from notifications.models import Send

    ana = person("ana")
    call_command("send", "Offer", "--customers", ana.external_id, "--local-time", "09:00",
                 "--skip-passed", "--quiet-hours", "23:00-07:30", "--no-wait",
                 stdout=StringIO())

    send = Send.objects.get()
    assert (send.local_time, send.local_time_passed, send.quiet_hours_start,
            send.quiet_hours_end) == (time(9), "skip", time(23), time(7, 30))
    with pytest.raises(CommandError):
        call_command("send", "Offer", "--customers", "ana", "--local-time", "9 am",
                     "--no-wait", stdout=StringIO(), stderr=StringIO())

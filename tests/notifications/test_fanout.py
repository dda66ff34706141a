from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from audiences.models import Segment, Topic, TopicOptOut
from audiences.services import customer_upsert
from notifications.models import Delivery, DeliveryBatch, DeliverySettings, Send, Template
from notifications.sending.timing import quiet_hours_end_in_zone
from notifications.services import device_register, send_create, send_fan_out

pytestmark = pytest.mark.django_db


@pytest.fixture
def offers_template():
    return Template.objects.create(
        name="Offer", title="Hi {{ customer.first_name }}", body="20% off today",
        topic=Topic.objects.get(key="offers"),
    )


@pytest.fixture
def no_quiet_hours():
    controls = DeliverySettings.load()
    controls.quiet_hours_start = controls.quiet_hours_end = time(0, 0)
    controls.save()


def customer_with_devices(external_id, *kinds, **fields):
    customer, _ = customer_upsert(external_id=external_id, **fields)
    for n, kind in enumerate(kinds):
        extra = {"p256dh": "p", "auth": "a"} if kind == "webpush" else {}
        platform = {"apns": "ios", "fcm": "android", "webpush": "web"}[kind]
        device_register(customer=customer, kind=kind, token=f"{external_id}-{kind}-{n}",
                        platform=platform, **extra)
    return customer


def fan_out(template, customers, **options):
    send = send_create(template=template, customer_ids=[c.pk for c in customers], **options)
    send_fan_out(send_id=send.pk)
    send.refresh_from_db()
    return send


def rows(send):
    return {
        (d.customer.external_id, d.kind or None, d.status, d.reason)
        for d in Delivery.objects.filter(send=send).select_related("customer")
    }


def test_one_row_per_device_and_a_reasoned_row_for_everyone_skipped(offers_template,
                                                                    no_quiet_hours):
    ana = customer_with_devices("ana", "fcm", "apns")
    ben = customer_with_devices("ben")
    cleo = customer_with_devices("cleo", "webpush", push_opt_out=True)
    dora = customer_with_devices("dora", "fcm")
    TopicOptOut.objects.create(customer=dora, topic=offers_template.topic)

    send = fan_out(offers_template, [ana, ben, cleo, dora])

    assert rows(send) == {
        ("ana", "fcm", "queued", ""), ("ana", "apns", "queued", ""),
        ("ben", None, "skipped", "no_active_device"),
        ("cleo", None, "skipped", "opted_out"),
        ("dora", None, "skipped", "opted_out"),
    }
    assert send.status == Send.Status.SENDING
    assert sorted(DeliveryBatch.objects.filter(send=send).values_list("kind", "size")) == [
        ("apns", 1), ("fcm", 1),
    ]


def test_denied_permission_and_inactive_devices_are_not_targets(offers_template, no_quiet_hours):
    from notifications.models import Device

    ana = customer_with_devices("ana", "fcm", "apns")
    Device.objects.filter(customer=ana, kind="fcm").update(permission="denied")
    Device.objects.filter(customer=ana, kind="apns").update(is_active=False)

    send = fan_out(offers_template, [ana])

    assert rows(send) == {("ana", None, "skipped", "no_active_device")}


def test_a_rerun_of_the_fan_out_writes_nothing_new(offers_template, no_quiet_hours):
    customers = [customer_with_devices(f"c{i}", "fcm") for i in range(5)]
    send = fan_out(offers_template, customers)

    Send.objects.filter(pk=send.pk).update(status=Send.Status.QUEUED)  # as the sweeper does
    send_fan_out(send_id=send.pk)

    assert Delivery.objects.filter(send=send).count() == 5
    assert DeliveryBatch.objects.filter(send=send).count() == 1


def test_frequency_cap_skips_customers_who_had_enough(offers_template, no_quiet_hours):
    DeliverySettings.objects.filter(pk=1).update(frequency_cap=2, frequency_window_hours=24)
    busy = customer_with_devices("busy", "fcm")
    calm = customer_with_devices("calm", "fcm")
    for _ in range(2):
        earlier = fan_out(offers_template, [busy])
        Delivery.objects.filter(send=earlier).update(status="sent", sent_at=timezone.now())

    send = fan_out(offers_template, [busy, calm])

    assert rows(send) == {("busy", None, "skipped", "frequency_capped"),
                          ("calm", "fcm", "queued", "")}


def test_transactional_sends_ignore_the_cap(offers_template, no_quiet_hours):
    DeliverySettings.objects.filter(pk=1).update(frequency_cap=1)
    busy = customer_with_devices("busy", "fcm")
    earlier = fan_out(offers_template, [busy])
    Delivery.objects.filter(send=earlier).update(status="sent", sent_at=timezone.now())

    send = fan_out(offers_template, [busy], cap_exempt=True)

    assert rows(send) == {("busy", "fcm", "queued", "")}


def test_an_expired_offer_is_never_sent(offers_template, no_quiet_hours):
    ana = customer_with_devices("ana", "fcm")

    send = fan_out(offers_template, [ana], expires_at=timezone.now() - timedelta(minutes=1))

    assert rows(send) == {("ana", None, "skipped", "expired")}
    assert send.status == Send.Status.DONE


def test_quiet_hours_defer_to_the_end_of_the_window_in_the_customers_zone(offers_template):
    DeliverySettings.objects.filter(pk=1).update(quiet_hours_start=time(21, 0),
                                                quiet_hours_end=time(8, 0))
    now = timezone.now()
    # Pick zones where it is now night and day, whatever time the test runs.
    night_zone, day_zone = _zones_at(now, night=True), _zones_at(now, night=False)
    owl = customer_with_devices("owl", "fcm", time_zone=night_zone)
    lark = customer_with_devices("lark", "fcm", time_zone=day_zone)

    send = fan_out(offers_template, [owl, lark])

    deferred = Delivery.objects.get(send=send, customer=owl)
    assert deferred.reason == "quiet_hours_deferred" and deferred.status == "queued"
    assert deferred.not_before > now
    assert deferred.not_before.astimezone(_zone(night_zone)).time() == time(8, 0)
    assert Delivery.objects.get(send=send, customer=lark).not_before is None
    assert DeliveryBatch.objects.filter(send=send).count() == 2  # now, and at 08:00 local


def test_sends_to_a_segment(offers_template, no_quiet_hours):
    customer_with_devices("lisbon", "fcm", attributes={"city": "Lisbon"})
    customer_with_devices("porto", "fcm", attributes={"city": "Porto"})
    segment = Segment.objects.create(
        name="Lisbon", rules={"attribute": {"key": "city", "op": "eq", "value": "Lisbon"}}
    )

    send = send_create(template=offers_template, segment=segment)
    send_fan_out(send_id=send.pk)

    assert rows(send) == {("lisbon", "fcm", "queued", "")}


def test_batches_hold_at_most_the_chunk_size_and_throttle_spreads_them(offers_template,
                                                                       no_quiet_hours):
    customers = [customer_with_devices(f"c{i}", "fcm") for i in range(25)]

    send = fan_out(offers_template, customers, throttle_per_minute=10)

    batches = list(DeliveryBatch.objects.filter(send=send).order_by("number"))
    assert [b.size for b in batches] == [10, 10, 5]
    gaps = [(b.not_before - batches[0].not_before).total_seconds() for b in batches]
    assert gaps == [0, 60, 120]
    assert Delivery.objects.filter(send=send).values("batch_no").distinct().count() == 3


@pytest.mark.parametrize(("local", "expected_end"), [
    (datetime(2026, 3, 1, 22, 30), datetime(2026, 3, 2, 8, 0)),
    (datetime(2026, 3, 2, 6, 0), datetime(2026, 3, 2, 8, 0)),
    (datetime(2026, 3, 2, 12, 0), None),
    (datetime(2026, 3, 2, 21, 0), datetime(2026, 3, 3, 8, 0)),
    (datetime(2026, 3, 2, 8, 0), None),
])
def test_quiet_window_crossing_midnight(local, expected_end):
    zone = _zone("Asia/Tokyo")
    end = quiet_hours_end_in_zone(local.replace(tzinfo=zone), "Asia/Tokyo", time(21), time(8))
    assert end == (expected_end.replace(tzinfo=zone) if expected_end else None)


def test_quiet_window_end_respects_dst():
    zone = _zone("Europe/Lisbon")
    # The night clocks go forward (29 March 2026): 08:00 local is 07:00 UTC, not 08:00.
    night = datetime(2026, 3, 28, 23, 0, tzinfo=zone)
    end = quiet_hours_end_in_zone(night, "Europe/Lisbon", time(21), time(8))
    assert end.astimezone(UTC) == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def _zone(name):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _zones_at(now, *, night):
    for offset in range(-11, 13):
        name = f"Etc/GMT{-offset:+d}" if offset else "UTC"
        hour = now.astimezone(_zone(name)).hour
        is_night = hour >= 22 or hour < 7
        is_day = 10 <= hour < 19
        if (night and is_night) or (not night and is_day):
            return name
    raise AssertionError("no zone found")


def test_a_send_can_target_only_some_providers(offers_template, no_quiet_hours):
    ana = customer_with_devices("ana", "fcm", "webpush")
    ben = customer_with_devices("ben", "apns")

    send = fan_out(offers_template, [ana, ben], kinds=["webpush"])

    assert rows(send) == {("ana", "webpush", "queued", ""),
                          ("ben", None, "skipped", "no_active_device")}

"""Delivery controls that hold when a message is about to go, not only at fan-out: frequency
caps, throttles, the global control group and expiry."""

import threading
from collections import Counter
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from freezegun import freeze_time

from audiences.models import Customer, Topic
from audiences.services import customer_upsert
from notifications import tasks
from notifications.models import (
    Delivery,
    DeliveryBatch,
    DeliverySettings,
    FrequencyCap,
    Send,
    Template,
)
from notifications.providers import locmem
from notifications.sending.batch_send import batch_send
from notifications.services import (
    deliveries_sweep,
    device_register,
    send_create,
    send_expire,
    send_fan_out,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo, 13:00 in Lisbon


@pytest.fixture(autouse=True)
def outbox(settings):
    settings.PUSH_BACKEND = "notifications.providers.locmem.LocmemBackend"
    locmem.outbox.clear()
    DeliverySettings.objects.update_or_create(pk=1, defaults={
        "quiet_hours_start": time(21, 0), "quiet_hours_end": time(8, 0),
        "frequency_cap": 0, "frequency_window_hours": 24,
    })
    yield locmem.outbox
    locmem.outbox.clear()


@pytest.fixture
def offer():
    return Template.objects.create(name="Offer", title="Hi", body="20% off",
                                   topic=Topic.objects.get(key="offers"))


def person(external_id, zone="Europe/Lisbon", devices=1):
    customer, _ = customer_upsert(external_id=external_id, time_zone=zone)
    for n in range(devices):
        device_register(customer=customer, kind="fcm", token=f"{external_id}-{n}",
                        platform="android")
    return customer


def cap(limit, hours=24):
    DeliverySettings.objects.filter(pk=1).update(frequency_cap=limit,
                                                frequency_window_hours=hours)


def fanned_out(template, customers, **options):
    send = send_create(template=template, customer_ids=[c.pk for c in customers], **options)
    send_fan_out(send_id=send.pk)
    return send


def send_due_batches(send):
    for batch_id in DeliveryBatch.objects.filter(send=send).values_list("pk", flat=True):
        batch_send(batch_id=batch_id)
    send.refresh_from_db()
    return send


def outcomes(send):
    return Counter(Delivery.objects.filter(send=send).values_list("status", "reason"))


def received_by(customer):
    return Delivery.objects.filter(customer=customer, status="sent").values("send").distinct(
    ).count()


# --- 1. The cap holds ------------------------------------------------------------------------


def test_two_sends_fanned_out_before_either_went_reach_a_customer_once_under_a_cap_of_one(
        offer):
    cap(1)
    with freeze_time(T0):
        ana, ben = person("ana", devices=2), person("ben")
        first = fanned_out(offer, [ana, ben])
        second = fanned_out(offer, [ana])
        assert outcomes(second) == {("queued", ""): 2}  # nothing was sent yet at fan-out

        send_due_batches(first)
        send_due_batches(second)

    assert outcomes(first) == {("sent", ""): 3}  # ana's two devices are one push
    assert outcomes(second) == {("skipped", "frequency_capped"): 2}
    assert received_by(ana) == 1 and received_by(ben) == 1
    assert second.status == Send.Status.DONE


def test_a_deferred_message_is_capped_when_its_time_comes(offer):
    cap(1)
    with freeze_time(T0):
        owl = person("owl", zone="Asia/Tokyo")  # 21:00 there: quiet until 08:00 (23:00 UTC)
        deferred = fanned_out(offer, [owl])
        assert outcomes(deferred) == {("queued", "quiet_hours_deferred"): 1}
    with freeze_time(T0 + timedelta(hours=11, minutes=30)):  # 08:30 in Tokyo
        urgent = fanned_out(offer, [owl], respect_quiet_hours=False)
        send_due_batches(urgent)
        send_due_batches(deferred)

    assert outcomes(urgent) == {("sent", ""): 1}
    assert outcomes(deferred) == {("skipped", "frequency_capped"): 1}


def test_the_window_lets_the_next_push_through_once_the_earlier_one_is_old_enough(offer):
    cap(1, hours=1)
    with freeze_time(T0):
        ana = person("ana")
        send_due_batches(fanned_out(offer, [ana]))
    with freeze_time(T0 + timedelta(minutes=61)):
        later = send_due_batches(fanned_out(offer, [ana]))
    assert outcomes(later) == {("sent", ""): 1}


def test_transactional_sends_are_not_stopped_by_nor_counted_against_the_cap(offer):
    cap(1)
    with freeze_time(T0):
        ana = person("ana")
        receipt = fanned_out(offer, [ana], cap_exempt=True)
        marketing = fanned_out(offer, [ana])
        send_due_batches(receipt)
        send_due_batches(marketing)
        second_receipt = send_due_batches(fanned_out(offer, [ana], cap_exempt=True))
    assert outcomes(receipt) == outcomes(marketing) == outcomes(second_receipt) == {
        ("sent", ""): 1}


def test_a_topic_cap_holds_on_top_of_the_global_one(offer):
    cap(5)
    FrequencyCap.objects.create(topic=offer.topic, cap=1, window_hours=24)
    news = Template.objects.create(name="News", title="News", body="Read",
                                   topic=Topic.objects.get(key="content"))
    with freeze_time(T0):
        ana = person("ana")
        offers = [fanned_out(offer, [ana]) for _ in range(2)]
        other = fanned_out(news, [ana])
        for send in [*offers, other]:
            send_due_batches(send)
    assert outcomes(offers[0]) == {("sent", ""): 1}
    assert outcomes(offers[1]) == {("skipped", "frequency_capped"): 1}
    assert outcomes(other) == {("sent", ""): 1}  # another topic: only the global cap of 5


def test_a_campaign_kind_cap_counts_only_that_kinds_pushes(offer):
    FrequencyCap.objects.create(campaign_kind="broadcast", cap=1, window_hours=24)
    with freeze_time(T0):
        ana = person("ana")
        broadcasts = [fanned_out(offer, [ana], campaign_kind="broadcast") for _ in range(2)]
        journey = fanned_out(offer, [ana], campaign_kind="journey")
        adhoc = fanned_out(offer, [ana])
        for send in [*broadcasts, journey, adhoc]:
            send_due_batches(send)
    assert outcomes(broadcasts[1]) == {("skipped", "frequency_capped"): 1}
    assert outcomes(journey) == outcomes(adhoc) == {("sent", ""): 1}
    # At fan-out too: a third broadcast is skipped at once.
    with freeze_time(T0 + timedelta(minutes=5)):
        third = fanned_out(offer, [ana], campaign_kind="broadcast")
    assert outcomes(third) == {("skipped", "frequency_capped"): 1}


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.postgres(reason="SQLite serialises all writers, so two workers cannot race")
def test_two_workers_sending_two_sends_at_once_respect_a_cap_of_one(offer):
    cap(1)
    DeliverySettings.objects.filter(pk=1).update(quiet_hours_start=time(0, 0),
                                                quiet_hours_end=time(0, 0))
    customers = [person(f"c{i}") for i in range(40)]
    sends = [fanned_out(offer, customers) for _ in range(2)]
    batches = [DeliveryBatch.objects.get(send=send).pk for send in sends]
    barrier = threading.Barrier(2)
    errors = []

    def worker(batch_id):
        try:
            barrier.wait()
            batch_send(batch_id=batch_id)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    sent = Counter(Delivery.objects.filter(status="sent").values_list("customer_id", flat=True))
    assert sorted(sent.values()) == [1] * 40
    assert Delivery.objects.filter(reason="frequency_capped").count() == 40


# --- 2. The throttle holds across a stream's sends -----------------------------------------


def test_a_throttle_holds_across_the_sends_of_one_stream(offer):
    """A campaign makes one send per tick batch: 30 customers in three sends sharing one
    10-a-minute throttle go out ten a minute, not all at once."""
    with freeze_time(T0):
        customers = [person(f"c{i:02}") for i in range(30)]
        sends = [fanned_out(offer, customers[i:i + 10], throttle_per_minute=10,
                            throttle_key="campaign:1") for i in (0, 10, 20)]
        for send in sends:
            send_due_batches(send)
        assert len(locmem.outbox) == 10
    for minute in (1, 2):
        with freeze_time(T0 + timedelta(minutes=minute)):
            for send in sends:
                send_due_batches(send)
            assert len(locmem.outbox) == 10 * (minute + 1)
    assert all(send.status == Send.Status.DONE for send in sends)


def test_ad_hoc_sends_each_have_their_own_throttle(offer):
    with freeze_time(T0):
        customers = [person(f"c{i:02}") for i in range(20)]
        sends = [fanned_out(offer, customers[i:i + 10], throttle_per_minute=10)
                 for i in (0, 10)]
        for send in sends:
            send_due_batches(send)
    assert len(locmem.outbox) == 20


# --- 3. The control group holds for every marketing send ------------------------------------


def test_an_ad_hoc_send_skips_the_global_control_group_and_records_it(offer):
    DeliverySettings.objects.filter(pk=1).update(control_group_percent=50,
                                                quiet_hours_start=time(0, 0),
                                                quiet_hours_end=time(0, 0))
    customers = [person(f"c{i:02}") for i in range(30)]
    control = {c.pk for c in Customer.objects.filter(bucket__lt=5000)}
    assert 0 < len(control) < 30

    with freeze_time(T0):
        marketing = send_due_batches(fanned_out(offer, customers))
        receipt = send_due_batches(fanned_out(offer, customers, cap_exempt=True))

    skipped = set(Delivery.objects.filter(send=marketing, reason="control_group")
                  .values_list("customer_id", flat=True))
    assert skipped == control
    assert Delivery.objects.filter(send=marketing, status="sent").count() == 30 - len(control)
    assert Delivery.objects.filter(send=receipt, status="sent").count() == 30


# --- 5. Expiry is decided as early as it is known --------------------------------------------


def test_a_deferral_that_ends_after_the_expiry_is_skipped_at_fan_out(offer):
    with freeze_time(T0):
        owl = person("owl", zone="Asia/Tokyo")  # quiet until 23:00 UTC
        lark = person("lark")  # 13:00 in Lisbon
        flash = fanned_out(offer, [owl, lark], expires_at=T0 + timedelta(minutes=2))
        assert outcomes(flash) == {("skipped", "expired"): 1, ("queued", ""): 1}
        send_due_batches(flash)
    assert outcomes(flash) == {("skipped", "expired"): 1, ("sent", ""): 1}
    assert flash.status == Send.Status.DONE


def test_rows_still_queued_at_the_expiry_are_skipped_by_the_sweep_then(offer):
    with freeze_time(T0):
        customers = [person(f"c{i:02}") for i in range(20)]
        flash = fanned_out(offer, customers, throttle_per_minute=10,
                           expires_at=T0 + timedelta(seconds=90))
        send_due_batches(flash)
        assert outcomes(flash) == {("sent", ""): 10, ("queued", ""): 10}
    with freeze_time(T0 + timedelta(seconds=95)):
        assert deliveries_sweep()["expired"] == 10
    flash.refresh_from_db()
    assert outcomes(flash) == {("sent", ""): 10, ("skipped", "expired"): 10}
    assert flash.status == Send.Status.DONE
    assert not DeliveryBatch.objects.filter(send=flash).exclude(status="done").exists()


def test_the_expiry_task_skips_what_is_still_queued_at_the_expiry_and_never_before(offer):
    with freeze_time(T0):
        customers = [person(f"c{i:02}") for i in range(20)]
        flash = fanned_out(offer, customers, throttle_per_minute=10,
                           expires_at=T0 + timedelta(seconds=90))
        send_due_batches(flash)
    with freeze_time(T0 + timedelta(seconds=89)):  # early: changes nothing, looks again then
        assert send_expire(send_id=flash.pk) == T0 + timedelta(seconds=90)
        tasks.send_expire.apply(args=(flash.pk,))  # run eagerly, it cannot wait: no loop
        assert outcomes(flash) == {("sent", ""): 10, ("queued", ""): 10}
    with freeze_time(T0 + timedelta(seconds=90)):  # on the second, then once more
        assert send_expire(send_id=flash.pk) is None
        assert send_expire(send_id=flash.pk) is None
    flash.refresh_from_db()
    assert outcomes(flash) == {("sent", ""): 10, ("skipped", "expired"): 10}
    assert flash.status == Send.Status.DONE and flash.finished_at == T0 + timedelta(seconds=90)


def test_the_expiry_task_leaves_rows_a_worker_holds_and_other_sends_alone(offer):
    with freeze_time(T0):
        customers = [person(f"c{i:02}") for i in range(4)]
        flash = fanned_out(offer, customers, expires_at=T0 + timedelta(seconds=30))
        other = fanned_out(offer, customers)
        held = Delivery.objects.filter(send=flash).order_by("pk").first()
        Delivery.objects.filter(pk=held.pk).update(status=Delivery.Status.SENDING)
    with freeze_time(T0 + timedelta(seconds=31)):
        send_expire(send_id=flash.pk)
    assert outcomes(flash) == {("sending", ""): 1, ("skipped", "expired"): 3}
    assert outcomes(other) == {("queued", ""): 4}

"""Devices and deliveries follow merges and erasures (notifications' receivers of audiences'
customer_merging and customer_erasing)."""

from io import StringIO

import pytest
from django.core.management import call_command

from audiences.services import segment_create
from audiences.services_identity import customer_erase, customer_merge
from notifications.models import Delivery, Device, Send, Template
from notifications.services import delivery_track, device_register
from notifications.tracking import tracking_token
from tests.audiences.identity_kit import broadcast, deliveries_of, no_controls, person, phone

pytestmark = pytest.mark.django_db


def merge(anonymous_id: str, known_id: str):
    return customer_merge(external_id=known_id, anonymous_external_id=anonymous_id)


def test_a_send_that_reached_both_keeps_both_rows_one_unlinked():
    """Both skipped without a device in one send: the known customer may hold only one such
    row, so the anonymous one's stays, counted, without a customer."""
    no_controls()
    anonymous, known = person("anon-1"), person("user-1")
    send = broadcast(anonymous, known)
    assert Delivery.objects.filter(send=send, device__isnull=True).count() == 2

    result = merge("anon-1", "user-1")

    assert Delivery.objects.filter(send=send).count() == 2
    customers = Delivery.objects.filter(send=send).values_list("customer_id", flat=True)
    assert sorted(customers, key=str) == sorted([known.pk, None], key=str)
    assert result.merge.moved["deliveries_unlinked"] == 1


def test_deliveries_of_other_sends_and_their_devices_move():
    no_controls()
    anonymous, known = person("anon-1"), person("user-1")
    phone(anonymous, "anon-phone")
    send = broadcast(anonymous)

    merge("anon-1", "user-1")

    delivery = Delivery.objects.get(send=send)
    assert delivery.customer_id == known.pk
    assert delivery.device.customer_id == known.pk


def test_a_device_on_the_same_send_for_both_is_unlinked_not_duplicated():
    """The phone got the send as the known customer's, then registered anonymously after a
    logout, and the same send reached it again through the anonymous customer (a rerun)."""
    no_controls()
    anonymous, known = person("anon-1"), person("user-1")
    device = phone(known, "shared-phone")
    send = broadcast(known)
    device_register(customer=anonymous, kind="fcm", token=device.token, platform="android")
    Delivery.objects.create(send=send, customer=anonymous, device=device, kind="fcm",
                            status="sent")

    merge("anon-1", "user-1")

    rows = Delivery.objects.filter(send=send, device=device)
    assert sorted(rows.values_list("customer_id", flat=True), key=str) == sorted(
        [known.pk, None], key=str)
    assert Device.objects.get(pk=device.pk).customer_id == known.pk


def test_erasure_deletes_devices_and_keeps_deliveries_without_the_customer():
    no_controls()
    ana, ben = person("ana-1"), person("ben-2")
    phone(ana, "ana-phone")
    phone(ben, "ben-phone")
    send = broadcast(ana, ben)

    customer_erase(customer=ana, erased_by="test")

    assert list(Device.objects.values_list("customer_id", flat=True)) == [ben.pk]
    assert Delivery.objects.filter(send=send).count() == 2
    assert deliveries_of(ben).get().status == "queued"  # the other customer's row is theirs


def test_an_open_reported_for_an_erased_delivery_records_nothing_for_anyone():
    no_controls()
    ana = person("ana-1")
    phone(ana, "ana-phone")
    broadcast(ana)
    delivery = deliveries_of(ana).get()
    Delivery.objects.filter(pk=delivery.pk).update(status="sent")
    customer_erase(customer=ana, erased_by="test")

    tracked = delivery_track(token=tracking_token(delivery.pk), action="opened")

    assert tracked.opened_at is not None and tracked.customer_id is None


def test_the_send_command_finds_a_segment_by_key_name_or_id():
    Template.objects.create(name="Hello", title="Hi", body="There")
    segment = segment_create(name="Lisbon foodies", key="lisbon", rules={"all": []})

    for given in ("lisbon", "Lisbon foodies", str(segment.pk)):
        call_command("send", "Hello", "--segment", given, "--no-wait", stdout=StringIO())

    assert list(Send.objects.values_list("segment_id", flat=True)) == [segment.pk] * 3

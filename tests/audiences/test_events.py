from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audiences.models import Customer, Event, customer_bucket
from audiences.services import EventInput, customer_upsert, event_track, events_track
from audiences.signals import event_tracked

pytestmark = pytest.mark.django_db


def an_event(external_id="c1", name="app_open", event_id=None, **kwargs):
    return EventInput(
        name=name, occurred_at=kwargs.pop("occurred_at", timezone.now()),
        customer_external_id=external_id, client_event_id=event_id, **kwargs,
    )


def test_retried_event_with_same_client_id_is_stored_once():
    first = events_track(items=[an_event(event_id="evt-1")])
    retry = events_track(items=[an_event(event_id="evt-1")])

    assert [r.status for r in first] == ["created"]
    assert [r.status for r in retry] == ["duplicate"]
    assert retry[0].event.pk == first[0].event.pk
    assert Event.objects.count() == 1


def test_same_client_id_twice_in_one_batch_is_one_event():
    results = events_track(items=[an_event(event_id="e"), an_event(event_id="e")])

    assert [r.status for r in results] == ["created", "duplicate"]
    assert Event.objects.count() == 1


def test_client_event_ids_are_scoped_to_the_customer():
    events_track(items=[an_event("a", event_id="order-1"), an_event("b", event_id="order-1")])

    assert Event.objects.count() == 2


def test_events_without_client_id_are_never_deduplicated():
    events_track(items=[an_event(), an_event()])

    assert Event.objects.count() == 2


def test_unknown_customers_are_created_with_their_stable_bucket():
    events_track(items=[an_event("new-customer", name="page_view")])

    customer = Customer.objects.get(external_id="new-customer")
    assert customer.stage == "awareness"
    assert customer.bucket == customer_bucket("new-customer")


def test_last_seen_moves_forward_only():
    now = timezone.now()
    events_track(items=[an_event(occurred_at=now)])
    events_track(items=[an_event(occurred_at=now - timedelta(days=3))])

    assert Customer.objects.get(external_id="c1").last_seen_at == now


def test_event_tracked_fires_after_commit(django_capture_on_commit_callbacks):
    received = []

    def receiver(sender, **kwargs):
        received.append(kwargs["name"])

    event_tracked.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            customer, _ = customer_upsert(external_id="c9")
            event_track(customer=customer, name="purchase", properties={"total": 12})
    finally:
        event_tracked.disconnect(receiver)
    assert received == ["purchase"]


def test_upsert_merges_attributes_and_null_deletes_a_key():
    customer_upsert(external_id="c1", attributes={"city": "Lisbon", "plan": "free"})
    customer, created = customer_upsert(external_id="c1", attributes={"plan": None, "vip": True})

    assert created is False
    assert customer.attributes == {"city": "Lisbon", "vip": True}


def test_upsert_rejects_a_bad_time_zone_and_writes_nothing():
    with pytest.raises(ValidationError) as error:
        customer_upsert(external_id="c1", time_zone="Mars/Olympus")

    assert "time_zone" in error.value.message_dict
    assert not Customer.objects.filter(external_id="c1").exists()

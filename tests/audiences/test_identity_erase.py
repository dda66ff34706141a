"""Erasing a customer: personal data goes, what reports count stays without them, and the
erasure is recorded."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from push_notifications.models import GCMDevice

from audiences.models import (
    Customer,
    CustomerErasure,
    CustomerMerge,
    Event,
    Segment,
    SegmentMember,
    StageTransition,
    Topic,
    TopicOptOut,
)
from audiences.services import (
    EventInput,
    consent_set,
    events_track,
    referral_record,
    segment_create,
    segment_members_replace,
)
from audiences.services_identity import customer_erase, customer_erasure_find, customer_merge
from campaigns.models import Conversion, Enrollment
from notifications.models import Delivery, Device, Send
from tests.audiences.identity_kit import (
    broadcast,
    convert,
    deliveries_of,
    enroll,
    journey,
    no_controls,
    person,
    phone,
    track,
)

pytestmark = pytest.mark.django_db


def test_profile_consent_memberships_devices_and_events_are_gone():
    Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})
    ana = person("ana-1", first_name="Ana", email="ana@example.com")
    consent_set(customer=ana, opted_out_topics=["offers"])
    segment = segment_create(name="VIP", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=segment, external_ids=["ana-1"])
    phone(ana, "ana-phone")
    track(ana, "app_open", "purchase")

    erasure = customer_erase(customer=ana, erased_by="admin user dpo")

    assert not Customer.objects.filter(external_id="ana-1").exists()
    assert not Event.objects.exists() and not TopicOptOut.objects.exists()
    assert not SegmentMember.objects.exists()
    assert not Device.objects.exists() and not GCMDevice.objects.exists()  # the token too
    assert erasure.removed == {**erasure.removed, "events": 2, "devices": 1,
                               "topic_opt_outs": 1, "segment_memberships": 1}
    assert erasure.erased_by == "admin user dpo"


def test_the_record_keeps_a_keyed_hash_not_the_external_id():
    erasure = customer_erase(customer=person("ana@example.com"), erased_by="api")

    assert "ana" not in erasure.external_id_hash
    assert len(erasure.external_id_hash) == 64
    assert customer_erasure_find("ana@example.com") == erasure
    assert customer_erasure_find("ben@example.com") is None


def test_deliveries_enrollments_conversions_and_moves_stay_without_the_customer():
    no_controls()
    ana = person("ana-1")
    phone(ana, "ana-phone")
    track(ana, "app_open")  # a stage move: awareness -> engagement
    send = broadcast(ana)
    Delivery.objects.filter(send=send).update(status="failed", reason="dead_token",
                                              error="Requested entity was not found: tok...",
                                              provider_message_id="projects/x/messages/1")
    enrollment = enroll(journey(), ana)
    conversion = convert(enrollment)

    erasure = customer_erase(customer=ana, erased_by="api")

    delivery = Delivery.objects.get(send=send)
    assert (delivery.customer_id, delivery.device_id, delivery.erasure_id) == (
        None, None, erasure.pk)
    assert (delivery.status, delivery.reason) == ("failed", "dead_token")
    assert delivery.error == delivery.provider_message_id == ""
    enrollment.refresh_from_db()
    assert enrollment.customer_id is None
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "erased")
    conversion.refresh_from_db()
    assert conversion.customer_id is None and str(conversion.revenue) == "10.00"
    transition = StageTransition.objects.get()
    assert transition.customer_id is None and transition.event_id is None
    assert erasure.removed["deliveries"] == 1
    assert erasure.removed["enrollments"] == erasure.removed["conversions"] == 1


def test_a_delivery_not_sent_yet_is_skipped_as_erased():
    no_controls()
    ana = person("ana-1")
    phone(ana, "ana-phone")
    send = broadcast(ana)
    assert Delivery.objects.get(send=send).status == "queued"

    customer_erase(customer=ana, erased_by="api")

    delivery = Delivery.objects.get(send=send)
    assert (delivery.status, delivery.reason) == ("skipped", "customer_erased")


def test_other_customers_rows_that_named_their_events_lose_the_link_only():
    ana, ben = person("ana-1"), person("ben-2")
    event = track(ana, "purchase")[0]
    no_controls()
    send = Send.objects.create(template=broadcast(ben).template, customer_ids=[ben.pk],
                               trigger_event=event)

    customer_erase(customer=ana, erased_by="api")

    send.refresh_from_db()
    assert send.trigger_event_id is None
    assert deliveries_of(ben).exists()


def test_a_referee_keeps_existing_when_their_referrer_is_erased():
    referrer, referee = person("ana-1"), person("ben-2")
    referral_record(customer=referee, referral_code=referrer.referral_code)

    customer_erase(customer=referrer, erased_by="api")

    referee.refresh_from_db()
    assert referee.referred_by_id is None


def test_their_merge_records_go_with_them():
    customer_merge(external_id="ana-1", anonymous_external_id=person("anon-1").external_id)

    erasure = customer_erase(customer=Customer.objects.get(external_id="ana-1"),
                             erased_by="api")

    assert erasure.removed["merges"] == 1
    assert not CustomerMerge.objects.exists() and not Customer.objects.exists()


def _erase_queries(external_id: str, events: int) -> int:
    customer = person(external_id)
    items = [EventInput(name="screen_view", customer=customer, occurred_at=customer.created_at)
             for _ in range(events)]
    events_track(items=items)
    with CaptureQueriesContext(connection) as queries:
        customer_erase(customer=customer, erased_by="api")
    return len(queries)


def test_erasing_costs_the_same_statements_for_3000_events_as_for_3():
    """Set-based: no statement per event (Django's delete() would load every event)."""
    few, many = _erase_queries("few", 3), _erase_queries("many", 3000)

    assert many == few
    assert not Event.objects.exists()
    assert CustomerErasure.objects.latest("pk").removed["events"] == 3000


def test_enrollments_and_conversions_of_others_are_untouched():
    ana, ben = person("ana-1"), person("ben-2")
    campaign = journey()
    convert(enroll(campaign, ana))
    ben_enrollment = enroll(campaign, ben)

    customer_erase(customer=ana, erased_by="api")

    ben_enrollment.refresh_from_db()
    assert ben_enrollment.customer_id == ben.pk and ben_enrollment.state == "active"
    assert Enrollment.objects.count() == 2 and Conversion.objects.count() == 1

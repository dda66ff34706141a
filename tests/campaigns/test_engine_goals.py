"""Goals: reaching one exits the journey and records a conversion with revenue, attributed to
the last delivery this campaign sent the customer."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from freezegun import freeze_time

from audiences.models import Event
from audiences.services import event_track
from campaigns.engine.enrollments import enrollments_enter_audience
from campaigns.engine.entry import event_process, revenue_of
from campaigns.models import Campaign, Conversion, Enrollment, Step, Variant
from campaigns.services import journeys_tick
from notifications.models import Delivery
from tests.campaigns import engine_kit
from tests.campaigns.engine_kit import (
    campaign,
    deliver,
    enrollment_of,
    person,
    send,
    sends_of,
    template,
    wait,
)

pytestmark = pytest.mark.django_db
outbox, eager = engine_kit.outbox, engine_kit.eager  # fixtures
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def abandoned_cart(**fields):
    """Cart abandoned -> wait 1h -> reminder -> wait 1 day -> last call."""
    fields.setdefault("goal_event_name", "order_placed")
    fields.setdefault("goal_revenue_property", "total")
    fields.setdefault("goal_window", timedelta(days=3))
    return campaign("Abandoned cart", trigger=Campaign.Trigger.EVENT,
                    trigger_event_name="cart_abandoned", steps=[
                        wait(hours=1), send(template("Reminder", body="Still hungry?")),
                        wait(days=1), send(template("Last call", body="Last call")),
                    ], **fields)


def track(customer, name, at, **properties) -> Event:
    with freeze_time(at):
        event = event_track(customer=customer, name=name, properties=properties).event
        event_process(event_id=event.pk)
    return event


def tick_and_deliver(journey, at):
    with freeze_time(at):
        journeys_tick()
        deliver(sends_of(journey).filter(status="queued"))


def test_an_abandoned_cart_journey_stops_the_moment_the_customer_buys(outbox, eager,
                                                                      django_capture_on_commit_callbacks):
    ana = person("ana")
    journey = abandoned_cart()
    with freeze_time(T0), django_capture_on_commit_callbacks(execute=True):
        event_track(customer=ana, name="cart_abandoned")  # through the receiver and task
    tick_and_deliver(journey, T0 + timedelta(hours=1, minutes=1))
    assert [m.body for m in outbox] == ["Still hungry?"]
    with freeze_time(T0 + timedelta(hours=2)), django_capture_on_commit_callbacks(execute=True):
        order = event_track(customer=ana, name="order_placed", properties={"total": "23.50"})
    enrollment = enrollment_of(journey, ana)
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "goal")
    tick_and_deliver(journey, T0 + timedelta(days=2))
    assert [m.body for m in outbox] == ["Still hungry?"]  # no last call after the purchase
    conversion = Conversion.objects.get()
    assert conversion.revenue == Decimal("23.50")
    assert conversion.event_id == order.event.pk
    assert conversion.group == "treatment"
    assert conversion.delivery == Delivery.objects.get(customer=ana)


def test_conversion_is_attributed_to_the_last_delivery_with_its_variant(outbox):
    ana = person("ana")
    journey = abandoned_cart()
    last_call = journey.steps.get(position=3)
    variant = Variant.objects.create(step=last_call, name="A", template=template("LC-A"),
                                     weight=1)
    track(ana, "cart_abandoned", T0)
    tick_and_deliver(journey, T0 + timedelta(hours=1, minutes=1))
    tick_and_deliver(journey, T0 + timedelta(days=1, hours=2))
    deliveries = Delivery.objects.filter(customer=ana, status="sent").order_by("sent_at")
    assert deliveries.count() == 2
    # The enrollment completed; a purchase inside the goal window still converts it.
    assert enrollment_of(journey, ana).exit_reason == "completed"
    track(ana, "order_placed", T0 + timedelta(days=2), total=40)
    conversion = Conversion.objects.get()
    assert conversion.delivery == deliveries.last()
    assert conversion.variant == variant
    assert conversion.revenue == Decimal("40.00")


def test_a_customer_converts_once_per_enrollment_and_only_inside_the_window():
    ana, bob = person("ana", device=False), person("bob", device=False)
    abandoned_cart(goal_event_filter={"channel": "app"})
    track(ana, "cart_abandoned", T0)
    track(bob, "cart_abandoned", T0)
    track(ana, "order_placed", T0 + timedelta(hours=1), channel="web", total=5)
    assert not Conversion.objects.exists()  # the goal filter did not match
    track(ana, "order_placed", T0 + timedelta(hours=1), channel="app", total=5)
    track(ana, "order_placed", T0 + timedelta(hours=2), channel="app", total=7)
    assert Conversion.objects.get(customer=ana).revenue == Decimal("5.00")
    track(bob, "order_placed", T0 + timedelta(days=4), channel="app", total=9)  # too late
    assert not Conversion.objects.filter(customer=bob).exists()


@pytest.mark.parametrize(("raw", "expected"), [
    ("12.345", Decimal("12.35")), (12, Decimal("12.00")), ("abc", Decimal(0)), (None, Decimal(0)),
    (True, Decimal(0)), ("NaN", Decimal(0)), ("1e400", Decimal(0)), ({"x": 1}, Decimal(0)),
])
def test_revenue_from_a_bad_or_missing_property_is_zero(raw, expected):
    assert revenue_of({"total": raw}, "total") == expected
    assert revenue_of({}, "total") == Decimal(0)


def test_a_bad_revenue_value_still_records_the_conversion():
    ana = person("ana", device=False)
    journey = abandoned_cart()
    track(ana, "cart_abandoned", T0)
    track(ana, "order_placed", T0 + timedelta(hours=1), total="twelve euros")
    assert Conversion.objects.get(campaign=journey).revenue == 0


def test_holdout_conversions_are_recorded_without_a_delivery(outbox):
    ana = person("ana")
    journey = abandoned_cart(holdout_percent=100)
    track(ana, "cart_abandoned", T0)
    tick_and_deliver(journey, T0 + timedelta(hours=2))
    assert outbox == [] and not Delivery.objects.exists()
    track(ana, "order_placed", T0 + timedelta(hours=3), total=10)
    conversion = Conversion.objects.get()
    assert (conversion.group, conversion.delivery) == ("holdout", None)


def test_a_broadcast_converts_after_its_enrollment_completed(outbox):
    ana = person("ana")
    blast = campaign("Blast", kind=Campaign.Kind.BROADCAST, goal_event_name="order_placed",
                     steps=[send(template("Blast"))])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=blast)
    tick_and_deliver(blast, T0)
    assert Enrollment.objects.get(campaign=blast).state == "exited"
    track(ana, "order_placed", T0 + timedelta(days=1))
    assert Conversion.objects.get().campaign == blast
    assert Step.objects.filter(campaign=blast).count() == 1

"""What the builder page and the API read about a campaign: audience size, progress, flow."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audiences.services import segment_create
from campaigns.models import Campaign, Conversion, Enrollment, Step, StepSend
from campaigns.selectors import campaign_audience_size, campaign_flow, campaign_progress
from notifications.models import Delivery, Send
from tests.campaigns.lifecycle_kit import (
    a_broadcast,
    a_journey,
    a_template,
    customers,
    enroll,
    send_step,
)

pytestmark = pytest.mark.django_db


def test_the_audience_of_a_broadcast_is_its_segment_now():
    customers(3)
    broadcast = a_broadcast()

    assert campaign_audience_size(broadcast) == 3
    customers(1, prefix="late")
    assert campaign_audience_size(broadcast) == 4


def test_a_journey_has_an_audience_only_when_a_segment_triggers_it():
    customers(2)
    on_event = a_journey()
    on_segment = a_journey(name="On segment", trigger=Campaign.Trigger.SEGMENT,
                           trigger_segment=segment_create(name="All", rules={"all": []}))

    assert campaign_audience_size(on_event) is None
    assert campaign_audience_size(on_segment) == 2


def test_progress_counts_enrollments_groups_deliveries_and_conversions():
    journey = a_journey()
    first = journey.first_step()
    people = customers(4)
    enrollments = enroll(journey, first, people)
    Enrollment.objects.filter(pk=enrollments[0].pk).update(
        state=Enrollment.State.EXITED, exit_reason=Enrollment.ExitReason.GOAL, group="holdout")
    send = Send.objects.create(template=a_template(), customer_ids=[p.pk for p in people])
    StepSend.objects.create(step=first, campaign=journey, send=send)
    for person, status in zip(people, ["sent", "sent", "failed", "queued"], strict=True):
        Delivery.objects.create(send=send, customer=person, status=status)
    Conversion.objects.create(campaign=journey, enrollment=enrollments[0], customer=people[0],
                              group="holdout", revenue=Decimal("12.50"),
                              occurred_at=timezone.now())

    progress = campaign_progress(journey)

    assert (progress.active, progress.exited, progress.enrolled) == (3, 1, 4)
    assert progress.groups == {"treatment": 3, "holdout": 1, "control": 0}
    assert progress.exit_reasons == {"goal": 1}
    assert (progress.deliveries_total, progress.sent, progress.failed, progress.queued) == (
        4, 2, 1, 1)
    assert progress.percent_sent == 75.0
    assert (progress.conversions, progress.revenue) == (1, Decimal("12.50"))
    assert progress.at_steps == {first.pk: 3}


def test_the_flow_has_a_node_per_step_and_an_edge_per_way_out():
    journey = a_journey(steps=[
        {"kind": Step.Kind.WAIT_EVENT, "name": "Bought?", "event_name": "purchase",
         "duration": timedelta(days=1), "next": 2, "else": 1},
        send_step(name="Nudge", key=1),
        {"kind": Step.Kind.EXIT, "key": 2},
    ])
    bought, nudge, done = journey.steps.all()
    enroll(journey, bought, customers(2))

    flow = campaign_flow(journey)

    assert [(n.number, n.label, n.next, n.else_, n.active) for n in flow.nodes] == [
        (1, "Bought?", done.pk, nudge.pk, 2), (2, "Nudge", done.pk, None, 0),
        (3, "Exit", None, None, 0)]
    assert flow.nodes[0].detail == "Wait for 'purchase' up to 1 day"
    assert [(e.source, e.target, e.label) for e in flow.edges] == [
        (bought.pk, done.pk, "happened"), (bought.pk, nudge.pk, "timed out"),
        (nudge.pk, done.pk, "next")]

"""Entering journeys and campaigns: triggers, re-entry, limits, groups, variants, and the send
step handing its customers to the delivery engine."""

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time

from audiences.models import Customer, Event
from audiences.services import event_track
from audiences.stages import customer_stage_set
from campaigns.engine.enrollments import enrollments_enter_audience
from campaigns.engine.entry import enrollment_enter, event_process, stage_process
from campaigns.models import (
    Campaign,
    Enrollment,
    Step,
    Variant,
    holdout_slot,
    variant_slot,
)
from campaigns.services import journeys_tick
from notifications.models import Delivery, DeliverySettings
from tests.campaigns import engine_kit
from tests.campaigns.engine_kit import (
    campaign,
    deliver,
    person,
    send,
    sends_of,
    template,
    wait,
)

pytestmark = pytest.mark.django_db
outbox, eager = engine_kit.outbox, engine_kit.eager  # fixtures
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def cart_journey(**fields):
    fields.setdefault("trigger", Campaign.Trigger.EVENT)
    fields.setdefault("trigger_event_name", "cart_abandoned")
    return campaign("Cart", steps=[send(template("Cart", body="Your {{ event.item }} waits")),
                                   wait(days=1)], **fields)


def test_an_event_enrolls_the_customer_within_seconds_through_the_signal(
        outbox, eager, django_capture_on_commit_callbacks):
    ana = person("ana", first_name="Ana")
    journey = cart_journey(trigger_event_filter={"store": "lisbon"})
    with django_capture_on_commit_callbacks(execute=True):
        event_track(customer=ana, name="cart_abandoned", properties={"store": "porto"})
    assert not Enrollment.objects.exists()  # the property filter did not match
    with django_capture_on_commit_callbacks(execute=True):
        tracked = event_track(customer=ana, name="cart_abandoned",
                              properties={"store": "lisbon", "item": "pizza"})
    enrollment = Enrollment.objects.get(campaign=journey, customer=ana)
    assert enrollment.trigger_event_id == tracked.event.pk
    assert enrollment.step.kind == Step.Kind.WAIT  # advanced at once, not at the next tick
    # The send step went all the way to the provider, personalised with the trigger event.
    assert [m.body for m in outbox] == ["Your pizza waits"]
    assert Delivery.objects.get(customer=ana).status == Delivery.Status.SENT


def test_a_stage_entry_enrolls_through_the_signal(eager, django_capture_on_commit_callbacks):
    ana = person("ana")
    journey = campaign("Welcome", steps=[wait(days=1)], trigger=Campaign.Trigger.STAGE,
                       trigger_stage="engagement")
    with django_capture_on_commit_callbacks(execute=True):
        customer_stage_set(customer=ana, stage="engagement", cause="test")
    assert Enrollment.objects.get(campaign=journey).customer == ana


@pytest.mark.parametrize(("policy", "cooldown", "expected"), [
    (Campaign.Reentry.ONCE, None, [1, 1, 1]),
    (Campaign.Reentry.ALWAYS, None, [1, 1, 2]),  # not while the first is active
    (Campaign.Reentry.COOLDOWN, timedelta(days=3), [1, 1, 1]),
])
def test_reentry_policies(policy, cooldown, expected):
    ana = person("ana")
    journey = campaign("Re", steps=[wait(days=1)], trigger=Campaign.Trigger.STAGE,
                       trigger_stage="engagement", reentry=policy, reentry_cooldown=cooldown)
    counts = []
    for at in (T0, T0 + timedelta(hours=1), T0 + timedelta(days=2)):
        with freeze_time(at):
            journeys_tick()
            stage_process(customer_id=ana.pk, to_stage="engagement")
        counts.append(Enrollment.objects.filter(campaign=journey).count())
    assert counts == expected
    if policy == Campaign.Reentry.COOLDOWN:
        with freeze_time(T0 + timedelta(days=3, hours=1)):
            stage_process(customer_id=ana.pk, to_stage="engagement")
        assert Enrollment.objects.filter(campaign=journey).count() == 2


def test_start_and_end_dates_bound_entry():
    ana = person("ana")
    journey = cart_journey(starts_at=T0, ends_at=T0 + timedelta(days=1),
                           reentry=Campaign.Reentry.ALWAYS)
    for at, entered in ((T0 - timedelta(minutes=1), False), (T0 + timedelta(hours=1), True),
                        (T0 + timedelta(days=1), False)):
        Enrollment.objects.all().delete()
        with freeze_time(at):
            result = enrollment_enter(campaign=journey, customer=ana)
        assert (result is not None) == entered, at


def test_the_journeys_segment_filters_entrants():
    from audiences.models import Segment

    vips = Segment.objects.create(
        name="VIPs", rules={"profile": {"field": "first_name", "op": "eq", "value": "Vip"}})
    journey = cart_journey(segment=vips)
    assert enrollment_enter(campaign=journey, customer=person("reg", first_name="Reg")) is None
    assert enrollment_enter(campaign=journey, customer=person("vip", first_name="Vip"))


def test_max_enrollments_is_never_exceeded():
    journey = cart_journey(max_enrollments=2)
    entered = [enrollment_enter(campaign=journey, customer=person(f"c{i}", device=False))
               for i in range(4)]
    assert [e is not None for e in entered] == [True, True, False, False]
    broadcast = campaign("Blast", kind=Campaign.Kind.BROADCAST, max_enrollments=3,
                         steps=[send(template("Blast"))])
    assert enrollments_enter_audience(campaign=broadcast) == 3
    assert enrollments_enter_audience(campaign=broadcast) == 0


def test_holdout_and_control_groups_are_recorded_and_get_no_deliveries(outbox):
    DeliverySettings.objects.update_or_create(pk=1, defaults={"control_group_percent": 10})
    customers = [person(f"c{i}") for i in range(60)]
    broadcast = campaign("Blast", kind=Campaign.Kind.BROADCAST, holdout_percent=20,
                         steps=[send(template("Blast"))])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=broadcast)
        journeys_tick()
    groups = dict(Enrollment.objects.filter(campaign=broadcast)
                  .values_list("customer_id", "group"))
    for customer in customers:  # the SQL agrees with models.holdout_slot
        expected = ("control" if customer.bucket < 1000 else
                    "holdout" if holdout_slot(customer.bucket, broadcast.pk) < 2000 else
                    "treatment")
        assert groups[customer.pk] == expected
    assert {"control", "holdout", "treatment"} <= set(groups.values())
    deliver(sends_of(broadcast))
    treated = {pk for pk, group in groups.items() if group == "treatment"}
    assert set(Delivery.objects.values_list("customer_id", flat=True)) == treated
    assert len(outbox) == len(treated)
    # A transactional campaign reaches the global control group.
    order_update = campaign("Order", kind=Campaign.Kind.BROADCAST, transactional=True,
                            steps=[send(template("Order"))])
    enrollments_enter_audience(campaign=order_update)
    assert not Enrollment.objects.filter(campaign=order_update, group="control").exists()


def test_ab_variants_are_assigned_stably_per_customer(outbox):
    customers = [person(f"c{i}") for i in range(40)]
    blast = campaign("AB", kind=Campaign.Kind.BROADCAST, steps=[{"kind": Step.Kind.SEND}])
    step = blast.steps.get()
    a = Variant.objects.create(step=step, name="A", template=template("A", body="A"), weight=50)
    b = Variant.objects.create(step=step, name="B", template=template("B", body="B"), weight=50)
    with freeze_time(T0):
        enrollments_enter_audience(campaign=blast)
        journeys_tick()
    by_variant = {s.step_send.variant_id: set(s.customer_ids) for s in sends_of(blast)}
    assert set(by_variant) == {a.pk, b.pk}
    for customer in customers:
        expected = a.pk if variant_slot(customer.bucket, step.pk) < 5000 else b.pk
        assert customer.pk in by_variant[expected]
    deliver(sends_of(blast))
    bodies = {m.token: m.body for m in outbox}
    assert all(bodies[f"tok-{c.external_id}"] == ("A" if c.pk in by_variant[a.pk] else "B")
               for c in customers)


def test_the_send_step_hands_the_campaign_controls_to_the_delivery_engine(outbox):
    ana = person("ana")
    expires = T0 + timedelta(days=2)
    journey = campaign("Offer", kind=Campaign.Kind.BROADCAST, transactional=True,
                       throttle_per_minute=100, respect_quiet_hours=False,
                       message_expires_at=expires, steps=[send(template("Offer"))])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
        journeys_tick()
    created = sends_of(journey).get()
    assert (created.cap_exempt, created.throttle_per_minute, created.respect_quiet_hours,
            created.expires_at) == (True, 100, False, expires)
    assert created.source == f"campaign:{journey.pk}/step:{journey.steps.get().pk}"
    assert created.customer_ids == [ana.pk]
    with freeze_time(T0 + timedelta(minutes=1)):
        deliver([created])
    assert Delivery.objects.get(send=created).status == Delivery.Status.SENT
    assert Enrollment.objects.get(campaign=journey).exit_reason == "completed"


def test_an_event_journey_groups_personalised_sends_by_trigger_event(outbox):
    ana, bob = person("ana"), person("bob")
    journey = cart_journey()
    for who, item in ((ana, "pizza"), (bob, "sushi")):
        event = Event.objects.create(customer=who, name="cart_abandoned",
                                     properties={"item": item}, occurred_at=T0)
        event_process(event_id=event.pk)
    assert sends_of(journey).count() == 2
    deliver(sends_of(journey))
    assert sorted(m.body for m in outbox) == ["Your pizza waits", "Your sushi waits"]


def test_recurring_runs_skip_customers_still_enrolled():
    ana = person("ana", device=False)
    weekly = campaign("Weekly", kind=Campaign.Kind.RECURRING, crontab="0 10 * * 1",
                      steps=[wait(days=10)])
    assert enrollments_enter_audience(campaign=weekly) == 1
    assert enrollments_enter_audience(campaign=weekly) == 0
    Enrollment.objects.filter(customer=ana).update(state="exited")
    assert enrollments_enter_audience(campaign=weekly) == 1
    assert Customer.objects.count() == 1


def test_segment_entries_enroll_new_members_of_live_segment_journeys(eager,
                                                                      django_capture_on_commit_callbacks):
    from audiences.models import Segment
    from campaigns.services import segment_entries_process

    vips = Segment.objects.create(
        name="VIPs", rules={"profile": {"field": "first_name", "op": "eq", "value": "Vip"}})
    journey = campaign("VIP welcome", trigger=Campaign.Trigger.SEGMENT, trigger_segment=vips,
                       steps=[{"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": "welcomed",
                               "attribute_value": True}, wait(days=30)])
    later = campaign("Later", trigger=Campaign.Trigger.SEGMENT, trigger_segment=vips,
                     starts_at=T0 + timedelta(days=1), steps=[wait(days=1)])
    ana = person("ana", first_name="Vip", device=False)
    person("bob", first_name="Bob", device=False)
    with freeze_time(T0), django_capture_on_commit_callbacks(execute=True):
        assert segment_entries_process() == 1
    ana.refresh_from_db()
    assert ana.attributes["welcomed"] is True  # the entrants were advanced straight away
    assert not Enrollment.objects.filter(campaign=later).exists()  # not started yet
    carla = person("carla", first_name="Vip", device=False)
    with freeze_time(T0 + timedelta(minutes=5)):
        assert segment_entries_process() == 1  # only the new member; ana is still enrolled
    assert set(Enrollment.objects.filter(campaign=journey)
               .values_list("customer_id", flat=True)) == {ana.pk, carla.pk}


def test_a_translation_reading_the_event_makes_the_send_personalised(outbox):
    from notifications.models import TemplateTranslation

    message = template("Cart pt", body="Your cart waits")
    TemplateTranslation.objects.create(template=message, locale="pt", title="Olá",
                                       body="O teu {{ event.item }} espera")
    journey = campaign("Cart pt", trigger=Campaign.Trigger.EVENT,
                       trigger_event_name="cart_abandoned", steps=[send(message)])
    for external_id, item in (("ana", "bacalhau"), ("rui", "pastel")):
        who = person(external_id, locale="pt")
        event = Event.objects.create(customer=who, name="cart_abandoned",
                                     properties={"item": item}, occurred_at=T0)
        event_process(event_id=event.pk)
    deliver(sends_of(journey))
    assert sorted(m.body for m in outbox) == ["O teu bacalhau espera", "O teu pastel espera"]

"""The journey engine walks enrollments through steps: waits, local-time waits, branches,
attribute and stage steps, exits. The clock is frozen and moved by hand."""

from datetime import UTC, datetime, time, timedelta

import pytest
from freezegun import freeze_time

from audiences.models import Customer, Segment, StageTransition
from audiences.services import event_track
from campaigns.engine.enrollments import enrollments_enter_audience
from campaigns.engine.entry import enrollment_enter, event_process
from campaigns.engine.local_time import next_local_time
from campaigns.engine.tick import enrollments_advance
from campaigns.models import Campaign, Enrollment, Step
from campaigns.services import journeys_tick
from notifications.models import Device
from tests.campaigns import engine_kit
from tests.campaigns.engine_kit import (
    campaign,
    enrollment_of,
    person,
    send,
    sends_of,
    template,
    wait,
)

pytestmark = pytest.mark.django_db
outbox = engine_kit.outbox  # fixture
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # a Tuesday


def segment_journey(name="Journey", *, steps, **fields):
    """A journey entered by segment (everyone), so enrollments_enter_audience enrolls."""
    fields.setdefault("trigger", Campaign.Trigger.SEGMENT)
    fields.setdefault("trigger_segment",
                      Segment.objects.get_or_create(name="All", defaults={"rules": {"all": []}})[0])
    return campaign(name, steps=steps, **fields)


def test_a_wait_holds_the_enrollment_until_its_duration_has_passed(outbox):
    ana = person("ana")
    journey = segment_journey(steps=[wait(days=1), send(template())])
    with freeze_time(T0):
        assert enrollments_enter_audience(campaign=journey) == 1
        journeys_tick()
    enrollment = enrollment_of(journey, ana)
    assert enrollment.next_run_at == T0 + timedelta(days=1)
    with freeze_time(T0 + timedelta(hours=23)):
        assert journeys_tick() == 0
    assert not sends_of(journey).exists()
    with freeze_time(T0 + timedelta(days=1, seconds=1)):
        assert journeys_tick() == 1
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "completed")
    assert sends_of(journey).get().customer_ids == [ana.pk]


def test_first_step_not_a_wait_runs_at_the_next_tick_and_walks_on_to_the_wait():
    ana = person("ana")
    journey = segment_journey(steps=[
        {"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": "vip", "attribute_value": True},
        wait(hours=2),
    ])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
        assert journeys_tick() == 1
    ana.refresh_from_db()
    assert ana.attributes["vip"] is True
    enrollment = enrollment_of(journey, ana)
    assert enrollment.step.kind == Step.Kind.WAIT
    assert enrollment.next_run_at == T0 + timedelta(hours=2)


def test_wait_until_local_time_is_computed_in_each_customers_zone():
    lisbon = person("lis", time_zone="Europe/Lisbon")
    tokyo = person("tyo", time_zone="Asia/Tokyo")
    new_york = person("nyc", time_zone="America/New_York")
    journey = segment_journey(steps=[
        {"kind": Step.Kind.WAIT_UNTIL, "local_time": time(10, 0)}, send(template()),
    ])
    with freeze_time(T0):  # 12:00 UTC: Lisbon 12:00, Tokyo 21:00, New York 08:00 (EDT)
        enrollments_enter_audience(campaign=journey)
    due = {e.customer_id: e.next_run_at for e in Enrollment.objects.filter(campaign=journey)}
    assert due[lisbon.pk] == datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
    assert due[tokyo.pk] == datetime(2026, 3, 11, 1, 0, tzinfo=UTC)
    assert due[new_york.pk] == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
    with freeze_time(datetime(2026, 3, 10, 14, 0, 1, tzinfo=UTC)):
        assert journeys_tick() == 1  # only New York's morning has come
    assert sends_of(journey).get().customer_ids == [new_york.pk]


def test_wait_until_uses_the_zone_of_the_device_the_customer_used_last():
    """The same rule as deliveries: the device's zone, else the customer's."""
    traveller = person("trv", time_zone="Europe/Lisbon")
    Device.objects.filter(customer=traveller).update(time_zone="Asia/Tokyo")
    journey = segment_journey(steps=[
        send(template()), {"kind": Step.Kind.WAIT_UNTIL, "local_time": time(10, 0)},
        send(template("Later")),
    ])
    event_journey = campaign("On open", trigger=Campaign.Trigger.EVENT,
                             trigger_event_name="app_open", steps=[
                                 {"kind": Step.Kind.WAIT_UNTIL, "local_time": time(10, 0)},
                                 send(template("Morning"))])
    waits_first = segment_journey("Waits first", steps=[
        {"kind": Step.Kind.WAIT_UNTIL, "local_time": time(10, 0)}, send(template("First"))])
    with freeze_time(T0):  # 12:00 UTC: 21:00 in Tokyo
        enrollments_enter_audience(campaign=journey)
        journeys_tick()  # the send, then the wait: through the tick's walk
        enrollment_enter(campaign=event_journey, customer=traveller)  # one entry, at once
        enrollments_enter_audience(campaign=waits_first)  # a whole segment arrives in SQL
    tokyo_ten = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)
    for each in (journey, event_journey, waits_first):
        assert enrollment_of(each, traveller).next_run_at == tokyo_ten, each.name


def test_wait_until_keeps_the_local_hour_across_a_dst_change():
    # Lisbon moves from UTC+0 to UTC+1 at 01:00 UTC on Sunday 29 March 2026.
    saturday_noon = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    assert next_local_time(saturday_noon, "Europe/Lisbon", time(10, 0)) == \
        datetime(2026, 3, 29, 9, 0, tzinfo=UTC)  # 10:00 WEST
    assert next_local_time(saturday_noon, "Europe/Lisbon", time(10, 0), [0]) == \
        datetime(2026, 3, 30, 9, 0, tzinfo=UTC)  # Monday only
    # Autumn: back from UTC+1 to UTC+0 on Sunday 25 October 2026.
    assert next_local_time(datetime(2026, 10, 24, 12, 0, tzinfo=UTC), "Europe/Lisbon",
                           time(10, 0)) == datetime(2026, 10, 25, 10, 0, tzinfo=UTC)
    # An unknown zone falls back to UTC rather than failing the tick.
    assert next_local_time(saturday_noon, "Mars/Olympus", time(10, 0)) == \
        datetime(2026, 3, 29, 10, 0, tzinfo=UTC)


def test_wait_until_allowed_weekdays_through_the_tick():
    ana = person("ana", time_zone="Europe/Lisbon")
    journey = segment_journey(steps=[
        {"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": "x", "attribute_value": 1},
        {"kind": Step.Kind.WAIT_UNTIL, "local_time": time(9, 30), "weekdays": [5, 6]},
        send(template()),
    ])
    with freeze_time(T0):  # Tuesday
        enrollments_enter_audience(campaign=journey)
        journeys_tick()
    assert enrollment_of(journey, ana).next_run_at == datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def wait_for_order(**fields):
    return segment_journey(steps=[
        {"kind": Step.Kind.WAIT_EVENT, "event_name": "order_placed",
         "duration": timedelta(hours=4), "event_filter": {"channel": "app"}, "next": 1,
         "else": 2},
        {"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": "branch", "attribute_value": "yes",
         "next": 3},
        {"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": "branch", "attribute_value": "no"},
        {"kind": Step.Kind.EXIT},
    ], **fields)


def test_wait_for_event_takes_the_happened_branch_when_the_event_comes():
    ana = person("ana")
    journey = wait_for_order()
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
    assert enrollment_of(journey, ana).waiting_for == "order_placed"
    with freeze_time(T0 + timedelta(hours=1)):
        other = event_track(customer=ana, name="order_placed", properties={"channel": "web"})
        event_process(event_id=other.event.pk)
        assert enrollment_of(journey, ana).state == "active"  # the filter did not match
        event = event_track(customer=ana, name="order_placed", properties={"channel": "app"})
        event_process(event_id=event.event.pk)
    ana.refresh_from_db()
    enrollment = enrollment_of(journey, ana)
    assert ana.attributes["branch"] == "yes"
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "exit_step")


def test_wait_for_event_times_out_to_the_else_branch():
    ana = person("ana")
    journey = wait_for_order()
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
    with freeze_time(T0 + timedelta(hours=3)):
        assert journeys_tick() == 0
    with freeze_time(T0 + timedelta(hours=4, seconds=1)):
        assert journeys_tick() == 1
    ana.refresh_from_db()
    assert ana.attributes["branch"] == "no"  # then on by position to the exit step
    assert enrollment_of(journey, ana).exit_reason == "exit_step"


def test_split_on_segment_sends_members_down_yes_and_the_rest_down_no():
    vips = Segment.objects.create(
        name="VIPs", rules={"profile": {"field": "first_name", "op": "eq", "value": "Vip"}})
    vip, regular = person("vip", first_name="Vip"), person("reg", first_name="Reg")
    journey = segment_journey(steps=[
        {"kind": Step.Kind.SPLIT_SEGMENT, "segment": vips, "next": 1, "else": 2},
        {"kind": Step.Kind.SET_STAGE, "stage": "advocacy", "next": 3},
        {"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": "nudged", "attribute_value": True},
        {"kind": Step.Kind.EXIT},
    ])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
        journeys_tick()
    vip.refresh_from_db(), regular.refresh_from_db()
    assert vip.stage == "advocacy" and "nudged" not in vip.attributes
    assert regular.stage == "awareness" and regular.attributes["nudged"] is True
    transition = StageTransition.objects.get(customer=vip)
    assert (transition.from_stage, transition.to_stage) == ("awareness", "advocacy")
    assert transition.cause.startswith("Campaign Journey")


def test_random_split_is_roughly_proportional_and_stable_per_customer():
    Customer.objects.bulk_create(
        Customer(external_id=f"c{i}", referral_code=f"R{i}", bucket=(i * 37) % 10_000)
        for i in range(2000))
    journey = segment_journey(steps=[
        {"kind": Step.Kind.SPLIT_RANDOM, "percent": 30, "next": 1, "else": 2},
        {"kind": Step.Kind.EXIT},
        wait(days=1),
    ])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
        journeys_tick()
    took_yes = set(Enrollment.objects.filter(campaign=journey, exit_reason="exit_step")
                   .values_list("customer_id", flat=True))
    assert 500 <= len(took_yes) <= 700  # 30% of 2,000
    # Stable: the same customers take the same branch again.
    Enrollment.objects.filter(campaign=journey).delete()
    with freeze_time(T0 + timedelta(days=3)):
        enrollments_enter_audience(campaign=journey)
        journeys_tick()
    assert took_yes == set(Enrollment.objects.filter(campaign=journey, exit_reason="exit_step")
                           .values_list("customer_id", flat=True))


def test_an_enrollment_whose_step_was_deleted_exits_as_step_removed():
    ana = person("ana")
    journey = segment_journey(steps=[wait(hours=1), send(template())])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
    journey.steps.get(position=0).delete()
    with freeze_time(T0 + timedelta(hours=2)):
        assert journeys_tick() == 1
    enrollment = enrollment_of(journey, ana)
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "step_removed")


def test_a_loop_with_no_wait_does_not_spin_the_tick():
    ana = person("ana")
    journey = segment_journey(steps=[
        {"kind": Step.Kind.SPLIT_RANDOM, "percent": 100},
        {"kind": Step.Kind.SPLIT_RANDOM, "percent": 100, "next": 0},
    ])
    journey.steps.filter(position=0).update(next_step=journey.steps.get(position=1))
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
        assert journeys_tick() == 1  # one batch, bounded hops, then it waits for the next tick
    enrollment = enrollment_of(journey, ana)
    assert enrollment.state == "active"
    assert enrollment.next_run_at > T0


def test_paused_campaign_enrollments_do_not_advance():
    person("ana")
    journey = segment_journey(steps=[wait(hours=1), send(template())])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
    Campaign.objects.filter(pk=journey.pk).update(status=Campaign.Status.PAUSED)
    with freeze_time(T0 + timedelta(hours=2)):
        assert enrollments_advance() == 0
    Campaign.objects.filter(pk=journey.pk).update(status=Campaign.Status.RUNNING)
    with freeze_time(T0 + timedelta(hours=2)):
        assert enrollments_advance() == 1
    assert sends_of(journey).count() == 1


def test_moving_enrollments_off_a_step_starts_the_wait_they_arrive_at():
    from campaigns.engine.enrollments import enrollments_exit_all, enrollments_move

    lisbon, tokyo = person("lis", time_zone="Europe/Lisbon"), person("tyo", time_zone="Asia/Tokyo")
    journey = segment_journey(steps=[
        wait(days=5),
        {"kind": Step.Kind.WAIT_UNTIL, "local_time": time(10, 0)},
        send(template()),
    ])
    first, local_wait, last = journey.steps.order_by("position")
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
        assert enrollments_move(from_step=first) == 2  # to its successor: arrives, waits
    due = {e.customer_id: (e.step_id, e.next_run_at) for e in Enrollment.objects.all()}
    assert due[lisbon.pk] == (local_wait.pk, datetime(2026, 3, 11, 10, 0, tzinfo=UTC))
    assert due[tokyo.pk] == (local_wait.pk, datetime(2026, 3, 11, 1, 0, tzinfo=UTC))
    with freeze_time(T0):
        assert enrollments_move(from_step=local_wait, to_step=last) == 2
        assert enrollments_move(from_step=last) == 2  # nothing follows: completed
    assert set(Enrollment.objects.values_list("exit_reason", flat=True)) == {"completed"}
    Enrollment.objects.update(state="active", exit_reason="", exited_at=None)
    assert enrollments_exit_all(campaign=journey, reason="campaign_ended") == 2
    assert not Enrollment.objects.filter(state="active").exists()


def test_a_wait_reached_on_the_last_hop_still_starts_its_wait():
    from campaigns.engine.walk import MAX_HOPS

    ana = person("ana")
    setters = [{"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": f"k{i}", "attribute_value": i}
               for i in range(MAX_HOPS)]
    journey = segment_journey(steps=[*setters, wait(days=1), send(template())])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
        journeys_tick()
    enrollment = enrollment_of(journey, ana)
    assert enrollment.step.kind == Step.Kind.WAIT
    assert enrollment.next_run_at == T0 + timedelta(days=1)
    with freeze_time(T0 + timedelta(hours=1)):
        assert journeys_tick() == 0
    assert not sends_of(journey).exists()


def test_a_split_on_a_broken_segment_takes_the_no_branch_instead_of_failing_the_tick():
    ana = person("ana")
    broken = Segment.objects.create(name="Broken", rules={"no_such_rule": 1})
    journey = segment_journey(steps=[
        {"kind": Step.Kind.SPLIT_SEGMENT, "segment": broken, "next": 1, "else": 2},
        {"kind": Step.Kind.EXIT},
        {"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": "branch", "attribute_value": "no"},
    ])
    with freeze_time(T0):
        enrollments_enter_audience(campaign=journey)
        assert journeys_tick() == 1
    ana.refresh_from_db()
    assert ana.attributes["branch"] == "no"

"""Editing the steps of a running journey never strands the customers enrolled in it."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns import services
from campaigns.models import Enrollment, Step, StepSend, Variant
from notifications.models import Send
from tests.campaigns.lifecycle_kit import (
    a_journey,
    a_template,
    customers,
    enroll,
    send_step,
    wait_step,
)

pytestmark = pytest.mark.django_db


def running_journey():
    """1 send 'Hello' -> 2 wait -> 3 send 'Again' -> 4 wait 'Cool off' -> 5 exit."""
    journey = a_journey(steps=[send_step(name="Hello"), wait_step(name="Wait"),
                               send_step(name="Again"), wait_step(name="Cool off"),
                               {"kind": Step.Kind.EXIT, "name": "Bye"}])
    return services.campaign_launch(campaign=journey)


def steps_of(journey) -> dict[str, Step]:
    return {step.name: step for step in journey.steps.all()}


def test_removing_a_step_moves_its_customers_to_where_it_led():
    journey = running_journey()
    steps = steps_of(journey)
    waiting = enroll(journey, steps["Wait"], customers(3))

    services.steps_remove(campaign=journey, steps=[steps["Wait"]])

    moved = Enrollment.objects.filter(pk__in=[e.pk for e in waiting])
    assert set(moved.values_list("state", "step_id")) == {
        (Enrollment.State.ACTIVE, steps["Again"].pk)}
    assert all(e.next_run_at <= timezone.now() for e in moved)  # a send is due at once
    assert not Step.objects.filter(pk=steps["Wait"].pk).exists()


def test_a_removed_steps_sends_stay_with_the_campaign_for_its_reports():
    journey = running_journey()
    hello = steps_of(journey)["Hello"]
    send = Send.objects.create(template=hello.template, customer_ids=[])
    StepSend.objects.create(step=hello, campaign=journey, send=send)

    services.steps_remove(campaign=journey, steps=[hello])

    kept = StepSend.objects.get(send=send)
    assert (kept.campaign_id, kept.step_id) == (journey.pk, None)


def test_links_to_a_removed_step_follow_it_to_its_successor():
    journey = a_journey(steps=[
        {"kind": Step.Kind.WAIT_EVENT, "name": "Bought?", "event_name": "purchase",
         "duration": timedelta(days=1), "next": "thanks", "else": "nudge"},
        send_step(name="Nudge", key="nudge", next="done"),
        send_step(name="Thanks", key="thanks", next="done"),
        {"kind": Step.Kind.EXIT, "name": "Done", "key": "done"},
    ])
    services.campaign_launch(campaign=journey)
    steps = steps_of(journey)

    services.steps_remove(campaign=journey, steps=[steps["Nudge"]])

    bought = Step.objects.get(pk=steps["Bought?"].pk)
    assert (bought.next_step_id, bought.else_step_id) == (steps["Thanks"].pk, steps["Done"].pk)


def test_removing_a_step_that_leads_nowhere_ends_its_enrollments():
    journey = running_journey()
    steps = steps_of(journey)
    enroll(journey, steps["Bye"], customers(2))
    services.steps_remove(campaign=journey, steps=[steps["Bye"]])
    last = steps_of(journey)["Cool off"]
    people = enroll(journey, last, customers(2, prefix="late"))

    services.steps_remove(campaign=journey, steps=[last])

    assert set(Enrollment.objects.filter(pk__in=[e.pk for e in people]).values_list(
        "state", "exit_reason")) == {(Enrollment.State.EXITED, Enrollment.ExitReason.STEP_REMOVED)}


def test_removing_a_chain_of_steps_moves_customers_past_all_of_them():
    journey = running_journey()
    steps = steps_of(journey)
    people = enroll(journey, steps["Wait"], customers(2))

    services.steps_remove(campaign=journey, steps=[steps["Wait"], steps["Again"]])

    assert set(Enrollment.objects.filter(pk__in=[e.pk for e in people])
               .values_list("step_id", flat=True)) == {steps["Cool off"].pk}
    hello = Step.objects.get(pk=steps["Hello"].pk)
    assert hello.next_step_id == steps["Cool off"].pk


def test_only_the_campaigns_own_steps_can_be_removed():
    journey = running_journey()
    other = a_journey(name="Other")

    with pytest.raises(ValidationError, match="Only this campaign's steps"):
        services.steps_remove(campaign=journey, steps=[other.first_step()])


def test_saving_the_whole_journey_keeps_listed_steps_and_moves_customers_off_the_rest():
    journey = running_journey()
    steps = steps_of(journey)
    on_wait = enroll(journey, steps["Wait"], customers(2))
    on_cool = enroll(journey, steps["Cool off"], customers(2, prefix="cool"))

    services.campaign_save(campaign=journey, fields={}, steps=[
        {"id": steps["Hello"].pk, "kind": Step.Kind.SEND, "name": "Hello again",
         "template": a_template()},
        {"id": steps["Cool off"].pk, "kind": Step.Kind.WAIT, "name": "Cool off",
         "duration": timedelta(hours=2)},
        send_step(name="New ending", variants=[{"name": "A", "template": a_template("A"),
                                                "weight": 1}]),
    ])

    kept = list(journey.steps.all())
    assert [(s.pk, s.name, s.position) for s in kept[:2]] == [
        (steps["Hello"].pk, "Hello again", 1), (steps["Cool off"].pk, "Cool off", 2)]
    assert kept[1].duration == timedelta(hours=2)
    assert Variant.objects.get(step=kept[2]).name == "A"
    # Customers on "Wait" move to where it led ("Again", removed too, then "Cool off").
    assert set(Enrollment.objects.filter(pk__in=[e.pk for e in on_wait])
               .values_list("step_id", flat=True)) == {steps["Cool off"].pk}
    assert set(Enrollment.objects.filter(pk__in=[e.pk for e in on_cool])
               .values_list("step_id", flat=True)) == {steps["Cool off"].pk}
    assert Enrollment.objects.filter(state=Enrollment.State.ACTIVE).count() == 4


def test_saving_a_journey_that_cannot_run_changes_nothing():
    journey = running_journey()
    before = list(journey.steps.values_list("pk", "name", "next_step_id"))

    with pytest.raises(ValidationError) as refused:
        services.campaign_save(campaign=journey, fields={"description": "x"}, steps=[
            send_step(name="Loop", next=1, key=0),
            {"kind": Step.Kind.SET_STAGE, "stage": "retention", "name": "Back", "next": 0,
             "key": 1},
        ])

    assert refused.value.message_dict["steps"] == [
        "Step 1 'Loop': it is on a loop with no wait; add a wait step to the loop.",
        "Step 2 'Back': it is on a loop with no wait; add a wait step to the loop.",
    ]
    assert list(journey.steps.values_list("pk", "name", "next_step_id")) == before


def test_a_step_id_of_another_campaign_is_refused():
    journey = running_journey()
    other = a_journey(name="Other")

    with pytest.raises(ValidationError, match="is not a step of this campaign"):
        services.steps_save(campaign=journey, steps=[
            {"id": other.first_step().pk, "kind": Step.Kind.EXIT}])


def test_variants_are_matched_by_name_so_their_ids_survive():
    journey = a_journey(steps=[send_step(name="AB", variants=[
        {"name": "A", "template": a_template("A"), "weight": 50},
        {"name": "B", "template": a_template("B"), "weight": 50}])])
    step = journey.first_step()
    a_id = Variant.objects.get(step=step, name="A").pk

    services.steps_save(campaign=journey, steps=[{
        "id": step.pk, "kind": Step.Kind.SEND, "name": "AB",
        "variants": [{"name": "A", "template": a_template("A"), "weight": 80}]}])

    assert list(Variant.objects.filter(step=step).values_list("pk", "name", "weight")) == [
        (a_id, "A", 80)]

"""Campaign status changes and the beat rows that follow them: launch, schedule, pause, resume,
archive, delete, duplicate, and the beat entry point campaign_run."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, PeriodicTask

from campaigns import services
from campaigns.models import Campaign, Enrollment, Step, Variant
from campaigns.services import TRANSITIONS
from tests.campaigns.lifecycle_kit import (
    a_broadcast,
    a_journey,
    a_recurring,
    a_template,
    customers,
    enroll,
    send_step,
    wait_step,
)

pytestmark = pytest.mark.django_db
S = Campaign.Status


def beat_row(campaign: Campaign) -> PeriodicTask | None:
    campaign.refresh_from_db()
    return PeriodicTask.objects.filter(pk=campaign.beat_task_id).first()


# --- Transitions -----------------------------------------------------------------------------


def test_every_status_change_outside_the_table_is_refused_naming_both_statuses():
    journey = a_journey()
    for current in S.values:
        for wanted in set(S.values) - TRANSITIONS[current] - {current}:
            journey.status = current
            with pytest.raises(ValidationError) as refused:
                services.transition_check(journey, wanted)
            assert f"A {current} campaign cannot become {wanted}" in refused.value.messages[0]


def test_pausing_a_draft_is_refused_and_changes_nothing():
    journey = a_journey()

    with pytest.raises(ValidationError, match="A draft campaign cannot become paused: it can "
                                              "only become archived or running or scheduled."):
        services.campaign_pause(campaign=journey)

    journey.refresh_from_db()
    assert journey.status == S.DRAFT


def test_an_archived_campaign_can_change_no_more():
    journey = services.campaign_archive(campaign=a_journey())

    with pytest.raises(ValidationError, match="archived campaign cannot become running: it "
                                              "cannot change"):
        services.campaign_resume(campaign=journey)


# --- Launch ----------------------------------------------------------------------------------


def test_a_journey_launches_running_without_a_beat_row():
    journey = services.campaign_launch(campaign=a_journey())

    journey.refresh_from_db()
    assert journey.status == S.RUNNING
    assert journey.launched_at is not None
    assert beat_row(journey) is None


def test_launch_refuses_steps_that_cannot_run_and_names_them():
    journey = a_journey(steps=[send_step(), {"kind": Step.Kind.WAIT_EVENT, "name": "Wait for "
                                             "purchase", "event_name": "purchase",
                                             "duration": timedelta(days=1)}])
    # As an older version or a direct database edit could have left them:
    Step.objects.filter(campaign=journey, kind=Step.Kind.WAIT_EVENT).update(duration=None)
    Campaign.objects.filter(pk=journey.pk).update(trigger_event_name="")
    journey.refresh_from_db()

    with pytest.raises(ValidationError) as refused:
        services.campaign_launch(campaign=journey)

    assert refused.value.message_dict == {
        "trigger_event_name": ["An event trigger needs the event's name."],
        "steps": ["Step 2 'Wait for purchase': a wait for an event needs a timeout."],
    }
    journey.refresh_from_db()
    assert journey.status == S.DRAFT


def test_launch_needs_a_step():
    journey = a_journey(steps=[])

    with pytest.raises(ValidationError, match="Add at least one step before launching."):
        services.campaign_launch(campaign=journey)


def test_a_broadcast_for_later_is_scheduled_with_a_one_off_clocked_row():
    send_at = timezone.now() + timedelta(days=2)
    broadcast = services.campaign_launch(campaign=a_broadcast(send_at=send_at))

    row = beat_row(broadcast)
    assert broadcast.status == S.SCHEDULED
    assert row.name == f"Campaign #{broadcast.pk}: Sale"
    assert (row.task, row.args, row.one_off, row.enabled) == (
        "campaigns.tasks.campaign_run", f"[{broadcast.pk}]", True, True)
    assert row.clocked.clocked_time == send_at
    assert row.crontab is None and row.expire_seconds > 0


def test_a_broadcast_for_now_runs_at_once_after_commit(django_capture_on_commit_callbacks):
    from journeyhub.celery import app

    people = customers(3)
    broadcast = a_broadcast()
    app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.campaign_launch(campaign=broadcast)
    finally:
        app.conf.task_always_eager = False

    broadcast.refresh_from_db()
    assert broadcast.status in (S.RUNNING, S.COMPLETED)
    assert Enrollment.objects.filter(campaign=broadcast).count() == len(people)
    assert beat_row(broadcast) is None


def test_a_recurring_campaign_runs_on_a_crontab_in_its_time_zone():
    recurring = services.campaign_launch(campaign=a_recurring())

    row = beat_row(recurring)
    assert recurring.status == S.RUNNING
    assert row.name == f"Campaign #{recurring.pk}: Weekly travel tips"
    assert (row.crontab.minute, row.crontab.hour, row.crontab.day_of_week) == ("0", "10", "1")
    assert str(row.crontab.timezone) == "Europe/Lisbon"
    assert (row.enabled, row.one_off, row.clocked) == (True, False, None)
    assert row.expire_seconds > 0


@pytest.mark.parametrize(("crontab", "message"), [
    ("0 10 * *", "Give 5 fields"),
    ("0 25 * * 1", "The hour field '25' is invalid."),
    ("x 10 * * 1", "The minute field 'x' is invalid."),
])
def test_a_bad_crontab_is_refused_with_a_clear_error(crontab, message):
    with pytest.raises(ValidationError) as refused:
        a_recurring(crontab=crontab)

    assert message in " ".join(refused.value.message_dict["crontab"])
    assert not Campaign.objects.exists()


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError) as refused:
        a_recurring(crontab_time_zone="Mars/Olympus")

    assert "crontab_time_zone" in refused.value.message_dict


# --- Beat rows in step -----------------------------------------------------------------------


def test_the_recurring_row_follows_edits_pause_resume_archive():
    recurring = services.campaign_launch(campaign=a_recurring())

    services.campaign_save(campaign=recurring, fields={"crontab": "30 9 * * 5",
                                                        "name": "Friday tips"})
    row = beat_row(recurring)
    assert (row.crontab.minute, row.crontab.hour, row.crontab.day_of_week) == ("30", "9", "5")
    assert row.name == f"Campaign #{recurring.pk}: Friday tips"

    services.campaign_pause(campaign=recurring)
    assert beat_row(recurring).enabled is False

    services.campaign_resume(campaign=recurring)
    assert beat_row(recurring).enabled is True

    services.campaign_archive(campaign=recurring)
    assert beat_row(recurring) is None
    assert not PeriodicTask.objects.filter(name__startswith=f"Campaign #{recurring.pk}:").exists()


def test_the_clocked_row_follows_a_new_send_time_and_goes_with_the_campaign():
    first = timezone.now() + timedelta(days=1)
    broadcast = services.campaign_launch(campaign=a_broadcast(send_at=first))
    old_clocked = beat_row(broadcast).clocked_id

    services.campaign_pause(campaign=broadcast)
    assert beat_row(broadcast).enabled is False
    later = first + timedelta(hours=3)
    services.campaign_save(campaign=broadcast, fields={"send_at": later})
    services.campaign_resume(campaign=broadcast)

    row = beat_row(broadcast)
    assert broadcast.status == S.SCHEDULED
    assert (row.enabled, row.clocked.clocked_time) == (True, later)
    assert not ClockedSchedule.objects.filter(pk=old_clocked).exists()

    services.campaign_archive(campaign=broadcast)
    services.campaign_delete(campaign=broadcast)
    assert not PeriodicTask.objects.filter(task="campaigns.tasks.campaign_run").exists()
    assert not ClockedSchedule.objects.exists()


def test_unscheduling_returns_a_broadcast_to_draft_without_a_row():
    broadcast = services.campaign_launch(
        campaign=a_broadcast(send_at=timezone.now() + timedelta(days=1)))

    services.campaign_unschedule(campaign=broadcast)

    assert broadcast.status == S.DRAFT
    assert beat_row(broadcast) is None


def test_a_running_campaign_cannot_be_deleted_nor_change_kind():
    recurring = services.campaign_launch(campaign=a_recurring())

    with pytest.raises(ValidationError, match="archive it first"):
        services.campaign_delete(campaign=recurring)
    with pytest.raises(ValidationError) as refused:
        services.campaign_save(campaign=recurring, fields={"kind": Campaign.Kind.BROADCAST})
    assert "kind" in refused.value.message_dict
    assert beat_row(recurring).enabled is True


def test_archive_ends_active_enrollments():
    journey = services.campaign_launch(campaign=a_journey())
    enroll(journey, journey.first_step(), customers(2))

    services.campaign_archive(campaign=journey)

    assert set(Enrollment.objects.values_list("state", "exit_reason")) == {
        (Enrollment.State.EXITED, Enrollment.ExitReason.CAMPAIGN_ENDED)}
    journey.refresh_from_db()
    assert journey.finished_at is not None


def test_deleting_an_archived_campaign_removes_its_enrollments():
    journey = services.campaign_launch(campaign=a_journey())
    enroll(journey, journey.first_step(), customers(2))
    services.campaign_archive(campaign=journey)

    services.campaign_delete(campaign=journey)

    assert not Campaign.objects.exists()
    assert not Enrollment.objects.exists()


# --- Duplicate -------------------------------------------------------------------------------


def test_duplicate_copies_steps_links_and_variants_as_a_draft():
    journey = a_journey(steps=[
        {"kind": Step.Kind.WAIT_EVENT, "event_name": "purchase", "duration": timedelta(days=1),
         "next": 2, "else": 1, "key": 0},
        send_step(key=1, name="Nudge", variants=[
            {"name": "A", "template": a_template("A"), "weight": 70},
            {"name": "B", "template": a_template("B"), "weight": 30}]),
        {"kind": Step.Kind.EXIT, "key": 2},
    ])
    services.campaign_launch(campaign=journey)

    copy = services.campaign_duplicate(campaign=journey)
    again = services.campaign_duplicate(campaign=journey)

    assert (copy.name, copy.status, copy.beat_task) == ("Copy of Welcome", S.DRAFT, None)
    assert again.name == "Copy of Welcome (2)"
    wait, nudge, exit_ = copy.steps.all()
    assert {wait.campaign_id, nudge.campaign_id, exit_.campaign_id} == {copy.pk}
    assert (wait.next_step, wait.else_step) == (exit_, nudge)
    assert sorted(Variant.objects.filter(step=nudge).values_list("name", "weight")) == [
        ("A", 70), ("B", 30)]
    assert Step.objects.filter(campaign=journey).count() == 3  # the original kept its own


# --- campaign_run ----------------------------------------------------------------------------


def test_a_scheduled_broadcast_starts_when_its_row_fires_and_enrolls_once():
    people = customers(3)
    broadcast = services.campaign_launch(
        campaign=a_broadcast(send_at=timezone.now() + timedelta(minutes=5)))

    entered = services.campaign_run(campaign_id=broadcast.pk)
    again = services.campaign_run(campaign_id=broadcast.pk)

    broadcast.refresh_from_db()
    assert (entered, again) == (len(people), 0)
    assert broadcast.status == S.RUNNING and broadcast.launched_at is not None
    assert beat_row(broadcast).enabled is False  # a fired one-off fires no more


def test_a_broadcast_completes_when_every_enrollment_has_exited():
    customers(2)
    broadcast = services.campaign_launch(
        campaign=a_broadcast(send_at=timezone.now() + timedelta(minutes=5)))
    services.campaign_run(campaign_id=broadcast.pk)
    assert services.campaigns_complete_finished() == 0  # still walking

    Enrollment.objects.update(state=Enrollment.State.EXITED, exited_at=timezone.now(),
                              exit_reason=Enrollment.ExitReason.COMPLETED)

    assert services.campaigns_complete_finished() == 1
    broadcast.refresh_from_db()
    assert broadcast.status == S.COMPLETED and broadcast.finished_at is not None
    assert beat_row(broadcast) is None


def test_a_broadcast_to_nobody_completes_at_once():
    broadcast = services.campaign_launch(
        campaign=a_broadcast(send_at=timezone.now() + timedelta(minutes=5)))

    assert services.campaign_run(campaign_id=broadcast.pk) == 0

    broadcast.refresh_from_db()
    assert broadcast.status == S.COMPLETED


def test_a_recurring_run_enrolls_the_segment_again_but_not_those_still_enrolled():
    people = customers(3)
    recurring = services.campaign_launch(campaign=a_recurring())

    assert services.campaign_run(campaign_id=recurring.pk) == len(people)
    assert services.campaign_run(campaign_id=recurring.pk) == 0  # all still active
    Enrollment.objects.filter(customer=people[0]).update(
        state=Enrollment.State.EXITED, exited_at=timezone.now())
    assert services.campaign_run(campaign_id=recurring.pk) == 1


def test_a_paused_or_draft_campaign_does_not_run():
    customers(2)
    recurring = a_recurring()
    assert services.campaign_run(campaign_id=recurring.pk) == 0
    services.campaign_launch(campaign=recurring)
    services.campaign_pause(campaign=recurring)

    assert services.campaign_run(campaign_id=recurring.pk) == 0
    assert not Enrollment.objects.exists()


def test_a_recurring_campaign_past_its_end_completes_on_its_next_run():
    customers(1)
    recurring = services.campaign_launch(campaign=a_recurring(
        starts_at=timezone.now() - timedelta(days=2), ends_at=timezone.now() + timedelta(days=1)))

    entered = services.campaign_run(campaign_id=recurring.pk,
                                    now=timezone.now() + timedelta(days=2))

    recurring.refresh_from_db()
    assert entered == 0
    assert recurring.status == S.COMPLETED
    assert beat_row(recurring) is None


def test_a_run_of_a_deleted_campaign_or_a_journey_does_nothing():
    journey = services.campaign_launch(campaign=a_journey(steps=[send_step(), wait_step()]))

    assert services.campaign_run(campaign_id=journey.pk) == 0
    assert services.campaign_run(campaign_id=987654) == 0

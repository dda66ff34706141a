"""Daily rollups: the incremental refresh, late updates, and rebuilds matching the raw tables."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count, Q
from django.utils import timezone

from analytics.models import AudienceDay, DeliveryDay, EnrollmentDay, RollupState, TransitionDay
from analytics.reports import campaign_report
from analytics.rollups import day_ranges, rollups_rebuild, rollups_refresh
from audiences.models import StageTransition
from notifications.models import Delivery
from tests.analytics.rollup_data import D1, D2, at, campaign_world

pytestmark = pytest.mark.django_db


def delivery_rollup(**filters) -> dict:
    rows = DeliveryDay.objects.filter(**filters)
    return {(r.day, r.kind, r.status, r.reason): (r.deliveries, r.delivered, r.opened)
            for r in rows}


def test_refresh_sums_each_day_by_step_variant_platform_status_and_reason():
    world = campaign_world()

    rollups_refresh()

    variant_a = world.variant_a.pk
    assert delivery_rollup(variant_id=variant_a) == {
        (D1, "fcm", "sent", ""): (2, 2, 1),
        (D1, "apns", "sent", ""): (1, 0, 0),
        (D1, "", "skipped", "frequency_capped"): (1, 0, 0),
    }
    row = DeliveryDay.objects.filter(variant_id=variant_a).first()
    assert (row.campaign_id, row.step_id) == (world.campaign.pk, world.step1.pk)
    other = DeliveryDay.objects.get(campaign_id=None)
    assert (other.status, other.reason) == ("failed", "provider_rejected")
    # c1 has two devices in variant A's send: targeted counts customers, not devices.
    assert AudienceDay.objects.get(variant_id=variant_a).targeted == 3
    assert AudienceDay.objects.get(step_id=world.step2.pk).targeted == 2
    assert {(r.day, r.group, r.entered, r.exited) for r in EnrollmentDay.objects.all()} == {
        (D1, "treatment", 6, 0), (D1, "holdout", 2, 0)}


def test_refresh_picks_up_a_late_open_on_an_old_day():
    world = campaign_world()
    rollups_refresh()
    late = world.deliveries["c2_a"]

    # given: the app reports an open days after the send
    Delivery.objects.filter(pk=late.pk).update(opened_at=timezone.now())
    rebuilt = rollups_refresh()

    assert rebuilt >= 1
    assert delivery_rollup(variant_id=world.variant_a.pk)[(D1, "fcm", "sent", "")] == (2, 2, 2)
    assert campaign_report(campaign=world.campaign).totals.opened == 4


def test_refresh_with_nothing_new_rebuilds_no_day():
    campaign_world()
    rollups_refresh()

    assert rollups_refresh() == 0
    assert RollupState.objects.get().days_refreshed == 0


def test_refresh_picks_up_rows_inserted_with_old_timestamps_and_exits():
    world = campaign_world()
    rollups_refresh()

    # given: a transition dated by an event from last year, and an enrollment that exits now
    StageTransition.objects.create(customer=world.customers["c1"], from_stage="awareness",
                                   to_stage="engagement", at=at(D1) - timedelta(days=365),
                                   cause="test")
    enrollment = world.campaign.enrollments.get(customer=world.customers["c2"])
    enrollment.state, enrollment.exited_at = "exited", timezone.now()
    enrollment.save()
    rollups_refresh()

    assert TransitionDay.objects.get().day == D1 - timedelta(days=365)
    today = timezone.now().date()
    assert EnrollmentDay.objects.get(day=today, group="treatment").exited == 1


def test_a_refresh_claimed_elsewhere_does_nothing():
    campaign_world()
    RollupState.objects.create(pk=1, lease_until=timezone.now() + timedelta(minutes=5))

    assert rollups_refresh() is None
    assert not DeliveryDay.objects.exists()


def test_rebuild_gives_the_numbers_of_the_raw_tables_and_is_idempotent():
    world = campaign_world()
    rollups_refresh()
    before = campaign_report(campaign=world.campaign)

    DeliveryDay.objects.all().delete()
    rollups_rebuild(since=D1, until=D2)
    rollups_rebuild(since=D1, until=D2)

    assert campaign_report(campaign=world.campaign) == before
    raw = Delivery.objects.filter(send__step_send__campaign=world.campaign).aggregate(
        sent=Count("id", filter=Q(status="sent")), failed=Count("id", filter=Q(status="failed")),
        skipped=Count("id", filter=Q(status="skipped")), opened=Count("opened_at"),
        delivered=Count("received_at"))
    totals = before.totals
    assert raw == {"sent": totals.sent, "failed": totals.failed, "skipped": totals.skipped,
                   "opened": totals.opened, "delivered": totals.delivered}
    assert DeliveryDay.objects.count() == 8


def test_rebuild_command_replaces_only_the_days_asked(capsys):
    world = campaign_world()
    call_command("rollups_rebuild", "--since", "2026-03-03", "--until", "2026-03-03")

    assert set(DeliveryDay.objects.values_list("day", flat=True)) == {D2}
    assert "Rebuilt 1 day(s)" in capsys.readouterr().out
    assert campaign_report(campaign=world.campaign).totals.sent == 2


@pytest.mark.parametrize("args, message", [
    (["--since", "2026-13-01"], "not a date"),
    (["--since", "2026-03-03", "--until", "2026-03-01"], "must not be after"),
])
def test_rebuild_command_refuses_bad_dates(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("rollups_rebuild", *args)


def test_day_ranges_join_consecutive_days_in_chunks():
    days = [D1 + timedelta(days=n) for n in (0, 1, 2, 5, 6, 20)]

    assert list(day_ranges(days, chunk=2)) == [
        (D1, D1 + timedelta(days=1)), (D1 + timedelta(days=2), D1 + timedelta(days=2)),
        (D1 + timedelta(days=5), D1 + timedelta(days=6)),
        (D1 + timedelta(days=20), D1 + timedelta(days=20)),
    ]


def test_the_beat_task_refreshes_on_the_analytics_queue(settings):
    from analytics.tasks import rollups_refresh as task

    world = campaign_world()

    assert task.apply().get() > 0
    assert campaign_report(campaign=world.campaign).totals.sent == 6
    assert settings.CELERY_TASK_ROUTES[task.name] == {"queue": "analytics"}

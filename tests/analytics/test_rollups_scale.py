"""The rollup refresh reads what changed, not whole tables: each touched-days query goes through
an index or an id range, and what it no longer scans for (a deferred delivery sent the next
day, a fan-out that committed after the refresh's id mark) is still found."""

import json
import re
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from analytics.models import AudienceDay, DeliveryDay, RollupState
from analytics.rollups import ROLLUPS, _sql, rollups_refresh
from notifications.models import Delivery, DeliveryBatch, Send
from tests.analytics.rollup_data import D1, D2, at, campaign_send, campaign_world, deliver

pytestmark = pytest.mark.django_db


def statuses_on(day, variant) -> dict:
    return {(r.kind, r.status, r.reason): r.deliveries
            for r in DeliveryDay.objects.filter(day=day, variant_id=variant.pk)}


def queued_in_batch(send, person, kind, *, number, created_at, not_before=None, reason=""):
    """A queued delivery in batch ``number`` of ``send``, as the fan-out leaves it."""
    row = deliver(send, person, kind, status="queued", reason=reason)
    Delivery.objects.filter(pk=row.pk).update(created_at=created_at, batch_no=number,
                                              not_before=not_before)
    DeliveryBatch.objects.create(send=send, number=number, kind=kind, size=1,
                                 not_before=not_before)
    return row


def claim(send, number) -> None:
    """What a worker does first when it takes a batch."""
    DeliveryBatch.objects.filter(send=send, number=number).update(
        status="sending", claimed_at=timezone.now())


def test_a_delivery_deferred_by_quiet_hours_counts_as_sent_on_its_day_once_sent():
    world = campaign_world()
    # given: a send fanned out late on D1, its row deferred to the end of quiet hours on D2
    send = campaign_send(world.step1, world.variant_b, "evening")
    Send.objects.filter(pk=send.pk).update(status=Send.Status.SENDING, started_at=at(D1, 22))
    row = queued_in_batch(send, world.customers["c2"], "fcm", number=1,
                          created_at=at(D1, 22), not_before=at(D2, 8),
                          reason="quiet_hours_deferred")
    rollups_refresh()
    assert statuses_on(D1, world.variant_b)[("fcm", "queued", "quiet_hours_deferred")] == 1

    # when: the next morning a worker claims the batch and sends it
    claim(send, 1)
    Delivery.objects.filter(pk=row.pk).update(status="sent", reason="", sent_at=timezone.now())
    rollups_refresh()

    # then: D1 (the day it was created) has it as sent, and no longer queued
    statuses = statuses_on(D1, world.variant_b)
    assert ("fcm", "queued", "quiet_hours_deferred") not in statuses
    assert statuses[("fcm", "sent", "")] == 1


def test_cancelling_a_send_later_turns_its_queued_rows_into_skipped_in_the_rollup():
    from notifications.services import send_cancel

    world = campaign_world()
    send = campaign_send(world.step2, None, "cancelled later")
    Send.objects.filter(pk=send.pk).update(status=Send.Status.PAUSED, started_at=at(D1, 9))
    queued_in_batch(send, world.customers["c4"], "webpush", number=1, created_at=at(D1, 9))
    rollups_refresh()

    send_cancel(send=Send.objects.get(pk=send.pk))
    rollups_refresh()

    rows = DeliveryDay.objects.filter(day=D1, step_id=world.step2.pk)
    assert {(r.status, r.reason, r.deliveries) for r in rows} == {
        ("skipped", "send_cancelled", 1)}


def test_a_delivery_failing_in_a_batch_sent_later_is_picked_up():
    world = campaign_world()
    send = campaign_send(world.step2, None, "throttled")
    Send.objects.filter(pk=send.pk).update(status=Send.Status.SENDING, started_at=at(D1, 9))
    row = queued_in_batch(send, world.customers["c4"], "webpush", number=3,
                          created_at=at(D1, 9))
    rollups_refresh()

    # when: a throttled batch goes out hours later and the provider says the token is dead
    claim(send, 3)
    Delivery.objects.filter(pk=row.pk).update(status="failed", reason="dead_token")
    rollups_refresh()

    rows = DeliveryDay.objects.filter(day=D1, step_id=world.step2.pk)
    assert {(r.status, r.reason, r.deliveries) for r in rows} == {("failed", "dead_token", 1)}


def test_a_send_waiting_for_its_batches_rebuilds_no_day_while_nothing_moves():
    world = campaign_world()
    send = campaign_send(world.step2, None, "paused")
    Send.objects.filter(pk=send.pk).update(status=Send.Status.PAUSED, started_at=at(D1, 9))
    queued_in_batch(send, world.customers["c4"], "webpush", number=1, created_at=at(D1, 9))
    rollups_refresh()

    assert rollups_refresh() == 0


@pytest.mark.parametrize("minutes, finished", [
    (2, False),  # fan-out started within the late-commit margin; its batches not sent yet
    (60, True),  # fan-out slower than the margin: its send finished after it committed
])
def test_a_fan_out_committed_after_the_refresh_read_its_id_mark_is_picked_up(minutes,
                                                                             finished):
    # given: an id that a long fan-out took before the refresh ran, but committed after it
    world = campaign_world()
    placeholder = deliver(world.other_send, world.customers["c6"], day=D1, status="skipped",
                          reason="opted_out")
    late_id = placeholder.pk
    placeholder.delete()
    deliver(world.other_send, world.customers["c5"], "fcm", status="failed", reason="dead_token")
    rollups_refresh()
    assert RollupState.objects.get().last_delivery_id > late_id

    send = campaign_send(world.step2, None, "late commit")
    started = timezone.now() - timedelta(minutes=minutes)
    Send.objects.filter(pk=send.pk).update(
        status=Send.Status.DONE if finished else Send.Status.SENDING, started_at=started,
        finished_at=timezone.now() if finished else None)
    Delivery.objects.create(pk=late_id, send=send, customer=world.customers["c6"],
                            status="skipped", reason="opted_out", created_at=started)
    rollups_refresh()

    day = started.date()
    assert DeliveryDay.objects.get(day=day, step_id=world.step2.pk).deliveries == 1
    assert AudienceDay.objects.get(day=day, step_id=world.step2.pk).targeted == 1


def test_a_late_receipt_updates_its_send_day():
    world = campaign_world()
    rollups_refresh()

    Delivery.objects.filter(pk=world.deliveries["c1_a_apns"].pk).update(
        received_at=timezone.now())
    rollups_refresh()

    apns = DeliveryDay.objects.get(day=D1, kind="apns", variant_id=world.variant_a.pk)
    assert (apns.deliveries, apns.delivered, apns.opened) == (1, 1, 0)


# --- Plans ------------------------------------------------------------------------------------

BIG_TABLES = {"notifications_delivery", "notifications_send", "notifications_deliverybatch",
              "campaigns_conversion", "campaigns_enrollment", "audiences_stagetransition"}


def leading_column(index: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                       "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                       "WHERE i.indexrelid = %s::regclass", [index])
        return cursor.fetchone()[0]


def full_scans(plan: dict) -> list[str]:
    """Scans that read a big table, or an index on one, whole: a Seq Scan, or an index scan
    with no condition on the index's leading column (which walks all of the index)."""
    found = []
    kind, relation = plan["Node Type"], plan.get("Relation Name") or ""
    if kind == "Seq Scan" and relation in BIG_TABLES:
        found.append(f"Seq Scan on {relation}")
    if kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
        column = leading_column(plan["Index Name"])
        if not re.search(rf"\b{column}\b", plan.get("Index Cond", "")):
            found.append(f"{kind} on {plan['Index Name']} without a condition on {column}")
    for child in plan.get("Plans", []):
        found += full_scans(child)
    return found


def plan_of(sql: str, params: dict) -> dict:
    with transaction.atomic(), connection.cursor() as cursor:
        # A dozen rows are cheapest read whole: forbid that, and the joins that read a whole
        # side, so the plan shows whether an index can bound every big table.
        for setting in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin"):
            cursor.execute(f"SET LOCAL {setting} = off")
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


def touched_plan(rollup) -> dict:
    since = timezone.now() - timedelta(minutes=25)
    return plan_of(_sql(rollup.touched_sql, rollup), {"since": since, "last_id": 10**6})


def rebuild_plan(rollup) -> dict:
    return plan_of(_sql(rollup.insert_sql, rollup), {"start": at(D1, 0), "end": at(D2, 0)})


def _rollup_cases():
    return [pytest.param(rollup, id=rollup.table) for rollup in ROLLUPS]


@pytest.mark.postgres(reason="the query plans checked are PostgreSQL's")
@pytest.mark.parametrize("rollup", _rollup_cases())
def test_the_touched_days_query_reads_no_big_table_whole(rollup):
    campaign_world()

    assert full_scans(touched_plan(rollup)) == []


@pytest.mark.postgres(reason="the query plans checked are PostgreSQL's")
@pytest.mark.parametrize("rollup", _rollup_cases())
def test_rebuilding_a_day_reads_no_big_table_whole(rollup):
    campaign_world()

    assert full_scans(rebuild_plan(rollup)) == []

"""The tick at scale: a paused campaign's backlog costs the claim nothing, running campaigns
share each batch fairly, and an enrollment that a step fails for does not hold the others."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from audiences.models import Customer
from campaigns.engine.entry import enrollment_enter
from campaigns.engine.tick import enrollments_advance, fair_shares
from campaigns.models import Campaign, Enrollment, Step
from campaigns.services import journeys_tick
from tests.campaigns.engine_kit import campaign, wait

pytestmark = pytest.mark.django_db


def postgres_only(test):
    return pytest.mark.postgres(reason="reads PostgreSQL's query plans and its jsonb errors")(test)

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
BACKLOG = 20_000  # due enrollments piled up in a paused campaign


def customers(count: int, prefix: str) -> list[Customer]:
    return Customer.objects.bulk_create(
        Customer(external_id=f"{prefix}{i}", referral_code=f"{prefix.upper()}{i}",
                 bucket=i % 10_000) for i in range(count))


def due_at_first_wait(journey: Campaign, people, *, due: datetime, spacing=timedelta(0)):
    """Enroll these customers at the journey's first step (a wait), its wait over at ``due``
    (each next one ``spacing`` later)."""
    first = journey.steps.get(position=0)
    Enrollment.objects.bulk_create(
        Enrollment(campaign=journey, customer=customer, step=first, next_run_at=due + i * spacing,
                   entered_at=due - timedelta(days=1))
        for i, customer in enumerate(people))


def advanced_of(journey: Campaign) -> set[int]:
    """Customers the tick took past the first wait (they stand at the second, 30-day one)."""
    return set(Enrollment.objects.filter(campaign=journey, step__position=1)
               .values_list("customer_id", flat=True))


# --- fair shares ----------------------------------------------------------------------------


def test_fair_shares_give_what_a_small_campaign_leaves_to_the_big_ones():
    assert fair_shares({1: 10_000, 2: 10}, 10_000) == {2: 10, 1: 9_990}
    shares = fair_shares({1: 10_000, 2: 10_000, 3: 10_000}, 10_000)
    assert sum(shares.values()) == 10_000 and max(shares.values()) - min(shares.values()) <= 1
    assert fair_shares({1: 3, 2: 4}, 10_000) == {1: 3, 2: 4}
    assert fair_shares({}, 10_000) == {}


def test_one_tick_batch_advances_every_running_campaign_with_due_enrollments():
    broadcast = campaign("Big", steps=[wait(hours=1), wait(days=30)])
    journey = campaign("Small", steps=[wait(hours=1), wait(days=30)])
    many, few = customers(40, "big"), customers(3, "small")
    due_at_first_wait(broadcast, many, due=T0 - timedelta(hours=1), spacing=timedelta(seconds=1))
    due_at_first_wait(journey, few, due=T0)  # due after every one of the broadcast's
    with freeze_time(T0):
        assert enrollments_advance(limit=10) == 10
    assert advanced_of(journey) == {c.pk for c in few}
    assert advanced_of(broadcast) == {c.pk for c in many[:7]}  # its 7 oldest due


def test_a_paused_campaign_keeps_its_due_enrollments_out_of_the_batch():
    paused = campaign("Paused", steps=[wait(hours=1), wait(days=30)],
                      status=Campaign.Status.PAUSED)
    running = campaign("Running", steps=[wait(hours=1), wait(days=30)])
    due_at_first_wait(paused, customers(30, "p"), due=T0 - timedelta(days=1))
    due_at_first_wait(running, customers(4, "r"), due=T0)
    with freeze_time(T0):
        assert journeys_tick() == 4
    assert not advanced_of(paused) and len(advanced_of(running)) == 4


# --- the claim's cost does not grow with a paused campaign's backlog -------------------------


def _backlog(journey: Campaign, count: int, due: datetime) -> None:
    """``count`` customers and their due enrollments, in two INSERT ... SELECTs."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audiences_customer (external_id, first_name, last_name, email, locale,"
            " time_zone, attributes, stage, referral_code, bucket, push_opt_out, created_at,"
            " updated_at) SELECT 'backlog' || n, '', '', '', 'en', 'UTC', '{}', 'awareness',"
            " 'BL' || n, n %% 10000, false, now(), now() FROM generate_series(1, %s) AS n",
            [count])
        cursor.execute(
            "INSERT INTO campaigns_enrollment (campaign_id, customer_id, step_id, state, \"group\","
            " next_run_at, waiting_for, entered_at, exit_reason) SELECT %s, c.id, %s, 'active',"
            " 'treatment', %s, '', %s, '' FROM audiences_customer c"
            " WHERE c.external_id LIKE 'backlog%%'",
            [journey.pk, journey.steps.get(position=0).pk, due, due])
        cursor.execute("ANALYZE campaigns_enrollment")


def _enrollment_rows_read(plan: dict) -> int:
    """Rows that the plan's nodes over campaigns_enrollment produced or filtered away."""
    read = 0
    if plan.get("Relation Name") == "campaigns_enrollment":
        read += plan.get("Actual Rows", 0) * plan.get("Actual Loops", 1)
        read += plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
    return read + sum(_enrollment_rows_read(child) for child in plan.get("Plans", []))


def _enrollment_index_conds(plan: dict) -> list[str]:
    """The index conditions of the plan's scans of campaigns_enrollment (a scan with none, a
    sequential one, counts as an empty condition)."""
    conds = [plan.get("Index Cond", "")] if plan.get("Relation Name") == "campaigns_enrollment" \
        else []
    return conds + [c for child in plan.get("Plans", []) for c in _enrollment_index_conds(child)]


def _explained(sql: str) -> dict:
    """EXPLAIN ANALYZE of a statement the tick ran, in a transaction rolled back after."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        plan = cursor.fetchone()[0]
        transaction.set_rollback(True)
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]


@postgres_only
def test_the_claim_reads_the_running_campaigns_rows_not_a_paused_backlog():
    paused = campaign("Paused", steps=[wait(hours=1), wait(days=30)],
                      status=Campaign.Status.PAUSED)
    running = campaign("Running", steps=[wait(hours=1), wait(days=30)])
    other = campaign("Other", steps=[wait(hours=1), wait(days=30)])  # two due: they are counted
    _backlog(paused, BACKLOG, due=T0 - timedelta(days=1))  # older than anything running
    due_at_first_wait(running, customers(10, "r"), due=T0)
    due_at_first_wait(other, customers(3, "o"), due=T0)
    with CaptureQueriesContext(connection) as queries, freeze_time(T0):
        assert enrollments_advance(limit=100) == 13
    reads = [q["sql"] for q in queries.captured_queries
             if q["sql"].startswith("SELECT") and "campaigns_enrollment" in q["sql"]]
    assert sum("FOR UPDATE SKIP LOCKED" in sql for sql in reads) == 2  # one claim per campaign
    assert len(reads) == 4  # and before them: which campaigns are due, how many each
    # Put the claimed rows back as they were, so the plans below see the same table.
    for journey in (running, other):
        Enrollment.objects.filter(campaign=journey).update(step=journey.steps.get(position=0),
                                                           next_run_at=T0)
    for sql in reads:
        plan = _explained(sql)
        assert _enrollment_rows_read(plan) <= 100, (sql, json.dumps(plan, indent=1))  # not ~BACKLOG
        assert all("campaign_id =" in cond for cond in _enrollment_index_conds(plan)), plan


# --- an enrollment that a step fails for -----------------------------------------------------


def _drop_coupon_journey() -> Campaign:
    """Removes the "coupon" attribute, then waits: PostgreSQL refuses to delete a key from a
    customer whose attributes are not an object (bad data from an old import)."""
    return campaign("Coupons", steps=[
        {"kind": Step.Kind.SET_ATTRIBUTE, "attribute_key": "coupon", "attribute_value": None},
        wait(days=30),
    ], trigger=Campaign.Trigger.EVENT, trigger_event_name="signup")


def _corrupt(customer: Customer) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audiences_customer SET attributes = %s::jsonb WHERE id = %s",
                       ['"legacy import"', customer.pk])


@postgres_only
def test_an_enrollment_a_step_fails_for_exits_with_error_and_the_batch_advances(caplog):
    journey = _drop_coupon_journey()
    people = customers(9, "c")
    Customer.objects.update(attributes={"coupon": "SPRING"})
    poison = people[4]
    _corrupt(poison)
    first = journey.steps.get(position=0)
    Enrollment.objects.bulk_create(Enrollment(campaign=journey, customer=c, step=first,
                                              next_run_at=T0) for c in people)
    with freeze_time(T0), caplog.at_level(logging.ERROR, logger="campaigns.engine.walk"):
        assert journeys_tick() == 9
    failed = Enrollment.objects.get(customer=poison)
    assert (failed.state, failed.exit_reason, failed.step_id) == ("exited", "error", first.pk)
    others = Enrollment.objects.exclude(customer=poison)
    assert set(others.values_list("state", "step__position")) == {("active", 1)}
    assert not Customer.objects.exclude(pk=poison.pk).filter(attributes__has_key="coupon")
    assert f"Enrollment {failed.pk} " in caplog.text and "cannot delete from scalar" in caplog.text
    with freeze_time(T0 + timedelta(minutes=1)):
        assert journeys_tick() == 0  # parked for good, not retried at every tick


@postgres_only
def test_a_customer_a_step_fails_for_on_entry_exits_with_error_instead_of_failing_entry():
    journey = _drop_coupon_journey()
    (customer,) = customers(1, "e")
    _corrupt(customer)
    with freeze_time(T0):
        enrollment = enrollment_enter(campaign=journey, customer=customer)
    enrollment.refresh_from_db()
    assert (enrollment.state, enrollment.exit_reason) == ("exited", "error")

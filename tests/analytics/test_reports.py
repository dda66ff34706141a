"""Campaign reports, top campaigns, the journey map and delivery health, read from rollups of
a history counted by hand (tests/analytics/rollup_data.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.reports import (
    campaign_report,
    campaign_report_days,
    delivery_health,
    journey_map,
    top_campaigns,
)
from analytics.rollups import rollups_refresh
from audiences.models import Customer, StageTransition
from campaigns.models import Campaign, Step, StepSend
from notifications.models import Send
from tests.analytics.rollup_data import D1, D2, at, campaign_world, customer, deliver

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    world = campaign_world()
    rollups_refresh()
    return world


def numbers(counts) -> dict:
    return {name: getattr(counts, name) for name in (
        "targeted", "sent", "delivered", "failed", "skipped", "opened", "conversions", "revenue")}


def test_totals_count_customers_deliveries_reasons_and_treatment_conversions(world):
    report = campaign_report(campaign=world.campaign)

    assert numbers(report.totals) == {
        "targeted": 8, "sent": 6, "delivered": 3, "failed": 1, "skipped": 2, "opened": 3,
        "conversions": 2, "revenue": Decimal("50.00")}
    assert report.totals.failed_by_reason == {"dead_token": 1}
    assert report.totals.skipped_by_reason == {"frequency_capped": 1, "opted_out": 1}
    assert report.totals.open_rate == pytest.approx(3 / 6)
    assert report.enrolled == {"treatment": 6, "holdout": 2}
    assert report.totals.conversion_rate == pytest.approx(2 / 8)  # per targeted customer


def test_per_step_variant_and_platform(world):
    report = campaign_report(campaign=world.campaign)

    steps = {s.step_id: numbers(s.counts) for s in report.steps}
    assert steps[world.step1.pk] == {
        "targeted": 6, "sent": 4, "delivered": 3, "failed": 1, "skipped": 2, "opened": 2,
        "conversions": 2, "revenue": Decimal("50.00")}
    assert steps[world.step2.pk] == {
        "targeted": 2, "sent": 2, "delivered": 0, "failed": 0, "skipped": 0, "opened": 1,
        "conversions": 0, "revenue": Decimal("0")}
    assert [s.label for s in report.steps] == ["1. Offer", "2. Reminder"]
    variants = {v.label: numbers(v.counts) for v in report.variants}
    assert variants["A"] == {"targeted": 3, "sent": 3, "delivered": 2, "failed": 0,
                             "skipped": 1, "opened": 1, "conversions": 1,
                             "revenue": Decimal("30.00")}
    assert variants["B"] == {"targeted": 3, "sent": 1, "delivered": 1, "failed": 1,
                             "skipped": 1, "opened": 1, "conversions": 1,
                             "revenue": Decimal("20.00")}
    platforms = {p.key: (p.counts.sent, p.counts.failed, p.counts.skipped, p.counts.conversions)
                 for p in report.platforms}
    assert platforms == {"fcm": (4, 1, 0, 1), "apns": (1, 0, 0, 0), "webpush": (1, 0, 0, 1),
                         "none": (0, 0, 2, 0)}


def test_a_date_range_reads_only_its_days(world):
    report = campaign_report(campaign=world.campaign, since=D2, until=D2)

    assert numbers(report.totals) == {
        "targeted": 2, "sent": 2, "delivered": 0, "failed": 0, "skipped": 0, "opened": 1,
        "conversions": 1, "revenue": Decimal("30.00")}
    assert report.enrolled == {}
    assert report.totals.conversion_rate == pytest.approx(1 / 2)


def test_ab_winner_is_not_called_on_a_handful_of_customers(world):
    test = campaign_report(campaign=world.campaign).ab_tests[0]

    assert (test.step_id, test.metric) == (world.step1.pk, "conversion")
    assert test.comparison.p_value == pytest.approx(1.0)
    assert test.winner is None


def test_ab_winner_is_called_when_significant(world):
    # given: 400 more customers per variant on step 1, B converting far better than A
    from analytics.models import AudienceDay, ConversionDay

    ids = dict(campaign_id=world.campaign.pk, step_id=world.step1.pk, day=D1)
    for variant, conversions in ((world.variant_a, 20), (world.variant_b, 60)):
        AudienceDay.objects.create(variant_id=variant.pk, targeted=400, **ids)
        ConversionDay.objects.create(group="treatment", variant_id=variant.pk, kind="fcm",
                                     conversions=conversions, revenue=0, **ids)

    test = campaign_report(campaign=world.campaign).ab_tests[0]

    # A: 21 of 403; B: 61 of 403. Pooled p = 82/806; z = (61-21)/403 / sqrt(p(1-p)2/403)
    assert (test.leader, test.runner_up, test.winner) == ("B", "A", "B")
    assert test.comparison.z == pytest.approx(4.6607, abs=1e-3)
    assert test.comparison.p_value < 0.0001


def test_report_days_are_keyset_paginated(world):
    first = campaign_report_days(campaign=world.campaign, limit=1)
    second = campaign_report_days(campaign=world.campaign, after=first[-1].day, limit=1)
    third = campaign_report_days(campaign=world.campaign, after=second[-1].day, limit=1)

    assert [(d.day, d.counts.sent, d.counts.conversions) for d in first + second] == [
        (D1, 4, 1), (D2, 2, 1)]
    assert third == []


def test_top_campaigns_rank_by_conversions(world):
    quiet = Campaign.objects.create(name="Quiet one")
    step = Step.objects.create(campaign=quiet, kind="send", template=world.step2.template)
    send = Send.objects.create(template=step.template, customer_ids=[])
    StepSend.objects.create(step=step, campaign=quiet, send=send)
    deliver(send, customer("q1", "fcm"), "fcm", opened=True)
    rollups_refresh()

    top = top_campaigns(since=D1, until=D2)

    assert [(t.name, t.counts.conversions, t.counts.sent) for t in top] == [
        ("Spring offer", 2, 6), ("Quiet one", 0, 1)]
    assert top[0].counts.conversion_rate == pytest.approx(2 / 8)
    assert top[0].enrolled == 6
    assert len(top_campaigns(since=D1, until=D2, limit=1)) == 1


def test_delivery_health_counts_every_send_by_reason_and_day(world):
    health = delivery_health(since=D1, until=D2)

    assert (health.sent, health.failed, health.skipped) == (6, 2, 2)
    assert health.failed_by_reason == {"dead_token": 1, "provider_rejected": 1}
    assert [(d.day, d.sent, d.failed, d.dead_tokens) for d in health.days] == [
        (D1, 4, 2, 1), (D2, 2, 0, 0)]
    assert health.failure_rate == pytest.approx(2 / 8)


@pytest.fixture
def journeys(world):
    """x1: created D1-1 00:00, engagement at D1 12:00 (1.5 days), conversion at D2 12:00 (1 day).
    x2: created D1-1 12:00, engagement at D1 00:00 (0.5 day).
    x3: created D1-1 00:00, engagement at D2 00:00 (2 days), back to awareness at D2 06:00
    (0.25 day). x1 got Spring offer's message at D1 10:01; x2 one ten days before moving."""
    day0 = D1 - timedelta(days=1)
    people = {name: customer(name) for name in ("x1", "x2", "x3")}
    Customer.objects.filter(external_id__in=["x1", "x3"]).update(created_at=at(day0, 0))
    Customer.objects.filter(external_id="x2").update(created_at=at(day0, 12))
    moves = [("x1", "awareness", "engagement", at(D1, 12)),
             ("x1", "engagement", "conversion", at(D2, 12)),
             ("x2", "awareness", "engagement", at(D1, 0)),
             ("x3", "awareness", "engagement", at(D2, 0)),
             ("x3", "engagement", "awareness", at(D2, 6))]
    for name, a, b, when in moves:
        StageTransition.objects.create(customer=people[name], from_stage=a, to_stage=b, at=when,
                                       cause="test")
    Customer.objects.filter(external_id="x1").update(stage="conversion")
    Customer.objects.filter(external_id="x2").update(stage="engagement")
    spring_send = world.deliveries["c2_a"].send
    deliver(spring_send, people["x1"])  # sent D1 10:01, no device: kept simple
    old = deliver(spring_send, people["x2"], day=D1 - timedelta(days=10))
    assert old.sent_at < at(D1, 0) - timedelta(days=7)
    rollups_refresh()
    return people


def test_journey_map_matrix_entries_exits_and_customers_now(world, journeys):
    jmap = journey_map(since=D1, until=D2)

    assert jmap.matrix["awareness"]["engagement"] == 3
    assert jmap.matrix["engagement"]["conversion"] == 1
    assert jmap.matrix["engagement"]["awareness"] == 1
    assert sum(sum(row.values()) for row in jmap.matrix.values()) == 5
    assert jmap.forward_transitions == 4
    stages = {s.stage: s for s in jmap.stages}
    assert stages["engagement"].entries_per_day == [2, 1]
    assert stages["engagement"].exits_per_day == [0, 2]
    assert stages["awareness"].exits_per_day == [2, 1]
    assert (stages["conversion"].customers_now, stages["engagement"].customers_now) == (1, 1)
    assert stages["awareness"].customers_now == Customer.objects.filter(
        stage="awareness").count()
    assert jmap.days == [D1, D2]


def test_journey_map_median_time_in_stage(world, journeys):
    stages = {s.stage: s for s in journey_map(since=D1, until=D2).stages}

    assert stages["awareness"].median_seconds == pytest.approx(1.5 * 86400)  # 0.5, 1.5, 2
    assert stages["engagement"].median_seconds == pytest.approx(0.625 * 86400)  # 1 and 0.25
    assert stages["engagement"].median_days == pytest.approx(0.625)
    assert stages["advocacy"].median_seconds is None


def test_journey_map_credits_the_campaign_sent_within_the_window(world, journeys):
    credited = journey_map(since=D1, until=D2).campaigns

    assert [(c.campaign_name, c.to_stage, c.transitions) for c in credited] == [
        ("Spring offer", "engagement", 1), ("Spring offer", "conversion", 1)]
    assert journey_map(since=D1, until=D2, attribution_window=timedelta(hours=1)).campaigns == []

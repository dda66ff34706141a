"""The demo tells a story on the first page load: months of runs of every stage campaign, with
deliveries, opens, conversions and holdouts, rolled up; the dashboard's charts agree with the
numbers beside them."""

import io
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from analytics.dashboard import DASHBOARD_DAYS
from analytics.models import DeliveryDay
from analytics.referrals import referral_report
from analytics.reports import (
    campaign_lift,
    campaign_report,
    computed_at,
    delivery_health,
    journey_map,
)
from audiences.models import Customer
from campaigns.demo_history import HISTORY_SOURCE, PLANS
from campaigns.models import Campaign, Conversion
from notifications.models import Delivery, Device, Send

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings):
    settings.DEMO_WEBPUSH_SINK = False
    out = io.StringIO()
    call_command("seed_demo", customers=400, stdout=out)
    return out.getvalue()


def test_every_demo_campaign_has_months_of_rolled_up_history(demo):
    assert "Campaign history: 96 past weekly runs" in demo
    for campaign in Campaign.objects.filter(name__in=PLANS):
        report = campaign_report(campaign=campaign)
        assert report.totals.sent > 0 and report.totals.opened > 0, campaign.name
        if campaign.goal_event_name:
            assert report.totals.conversions > 0, campaign.name
        days = DeliveryDay.objects.filter(campaign_id=campaign.pk).values("day").distinct()
        assert days.count() == 16, campaign.name
    assert computed_at() is not None  # the pages say when, from the first load
    # the rollups hold what the raw rows hold
    assert sum(DeliveryDay.objects.values_list("deliveries", flat=True)) == (
        Delivery.objects.filter(send__source=HISTORY_SOURCE).count())


def test_the_holdouts_give_a_lift_with_revenue(demo):
    offer = Campaign.objects.get(name="Limited-time offer")

    lift = campaign_lift(campaign=offer)

    assert lift.groups["holdout"].enrolled > 0 and lift.vs_holdout is not None
    assert lift.groups["treatment"].rate > lift.groups["holdout"].rate
    assert campaign_report(campaign=offer).totals.revenue > 0
    # customers who opted out of push converted without a message: counted apart
    assert Conversion.objects.filter(group="treatment", delivery__isnull=True).exists()


def test_dead_tokens_per_day_add_up_to_the_devices_deactivated(demo):
    today = timezone.now().date()

    health = delivery_health(since=today - timedelta(days=DASHBOARD_DAYS - 1), until=today)

    assert health.dead_tokens == health.inactive_devices == Device.objects.filter(
        is_active=False).count() > 0


def test_running_seed_demo_again_adds_no_history(demo):
    before = (Send.objects.count(), Delivery.objects.count(), Conversion.objects.count())

    again = io.StringIO()
    call_command("seed_demo", customers=400, stdout=again)

    assert (Send.objects.count(), Delivery.objects.count(), Conversion.objects.count()) == before
    assert "Campaign history" not in again.getvalue()


def test_the_referral_report_and_the_advocacy_inflow_have_data(demo):
    today = timezone.now().date()

    report = referral_report(since=today - timedelta(days=16 * 7), until=today)

    assert report.signups > 0 and report.links_opened == report.signups
    assert report.referred_conversions > 0 and report.referred_revenue > 0
    assert report.asks_sent > 0 and report.referred_new_customers > 0
    assert any(week.k_factor for week in report.weeks)
    assert Customer.objects.filter(referred_by__isnull=False).count() == report.signups
    assert journey_map(since=today - timedelta(days=29), until=today).advocacy_inflow


def test_demo_0_starts_without_demo_data_or_running_demo_campaigns():
    root = Path(__file__).resolve().parents[2]  # make runs the suite too (make test)

    with_demo = subprocess.run(["make", "-n", "run"], cwd=root, capture_output=True,
                               text=True, check=True).stdout
    without = subprocess.run(["make", "-n", "run", "DEMO=0"], cwd=root, capture_output=True,
                             text=True, check=True).stdout

    assert "seed_demo" in with_demo and "seed_demo" not in without
    assert "DEMO_WEBPUSH_SINK=0" in without
    # what remains after migrate alone: no customers, no campaigns, nothing sent
    assert not Customer.objects.exists() and not Campaign.objects.exists()
    assert not Send.objects.exists()

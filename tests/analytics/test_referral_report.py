"""The referral report against a history counted by hand (tests/analytics/referral_data.py)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.referrals import referral_report
from analytics.reports import journey_map
from tests.analytics.referral_data import W1, W2, referral_world

pytestmark = pytest.mark.django_db
UNTIL = W2 + timedelta(days=6)


@pytest.fixture
def world():
    return referral_world()


def test_totals_count_opens_signups_conversions_and_new_customers(world):
    report = referral_report(since=W1, until=UNTIL)

    assert (report.links_opened, report.signups, report.referred_conversions) == (5, 4, 2)
    assert report.referred_revenue == Decimal("60.00")
    assert (report.new_customers, report.referred_new_customers) == (6, 4)
    assert report.referral_share == pytest.approx(4 / 6)


def test_the_viral_coefficient_per_week(world):
    weeks = referral_report(since=W1, until=UNTIL).weeks

    assert [(w.week, w.referrers, w.signups, w.converted) for w in weeks] == [
        (W1, 2, 3, 2), (W2, 1, 1, 0)]
    assert weeks[0].signups_per_referrer == pytest.approx(1.5)
    assert weeks[0].conversion_share == pytest.approx(2 / 3)
    assert weeks[0].k_factor == pytest.approx(1.0)
    assert weeks[1].k_factor == pytest.approx(0.0)


def test_a_week_without_sign_ups_has_no_k_factor(world):
    week = referral_report(since=W2 + timedelta(days=7), until=W2 + timedelta(days=7)).weeks

    assert [(w.signups, w.k_factor) for w in week] == [(0, None)]


def test_top_referrers_by_sign_ups_with_their_conversions(world):
    top = referral_report(since=W1, until=UNTIL).top_referrers

    assert [(r.external_id, r.signups, r.converted, r.revenue) for r in top] == [
        ("ref-a", 3, 1, Decimal("40.00")), ("ref-b", 1, 1, Decimal("20.00"))]


def test_the_range_bounds_every_count(world):
    report = referral_report(since=W2, until=UNTIL)

    assert (report.signups, report.referred_conversions, report.new_customers) == (1, 1, 1)
    assert report.referred_revenue == Decimal("20.00")


def test_the_journey_map_shows_advocacy_inflow_by_cause(world):
    jmap = journey_map(since=W1, until=UNTIL)

    assert jmap.advocacy_inflow == {"Referral sign-up: referral_signup event": 2,
                                    "Set by hand in the admin": 1}

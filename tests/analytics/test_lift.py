"""Lift and significance against values computed by hand."""

from decimal import Decimal

import pytest

from analytics.reports import campaign_lift
from analytics.rollups import rollups_refresh
from analytics.stats import compare_proportions, normal_cdf, two_sided_p_value
from audiences.services import customer_upsert
from campaigns.models import Campaign, Conversion, Enrollment
from tests.analytics.rollup_data import D1, at


def test_two_proportions_hand_computed():
    # 200/1000 against 150/1000. Pooled p = 0.175, SE = sqrt(0.175 * 0.825 * 2/1000) = 0.016993,
    # z = 0.05 / 0.016993 = 2.9424, p = 2 * (1 - Phi(2.9424)) = 0.00326.
    # Unpooled SE = sqrt(0.2 * 0.8/1000 + 0.15 * 0.85/1000) = 0.016956,
    # CI = 0.05 +- 1.96 * 0.016956 = (0.01677, 0.08323). Relative lift = 0.05 / 0.15.
    result = compare_proportions(200, 1000, 150, 1000)

    assert result.absolute_lift == pytest.approx(0.05)
    assert result.relative_lift == pytest.approx(1 / 3)
    assert result.z == pytest.approx(2.9424, abs=1e-4)
    assert result.p_value == pytest.approx(0.003256, abs=1e-5)
    assert (result.ci_low, result.ci_high) == (pytest.approx(0.016767, abs=1e-5),
                                               pytest.approx(0.083233, abs=1e-5))
    assert result.significant


def test_no_difference_is_not_significant():
    result = compare_proportions(30, 100, 30, 100)

    assert (result.z, result.p_value, result.significant) == (0.0, 1.0, False)
    assert result.ci_low == pytest.approx(-0.12702, abs=1e-5)  # 1.96 * sqrt(2 * 0.21 / 100)


def test_a_small_difference_on_small_groups_is_not_significant():
    # 12/100 against 8/100: z = 0.04 / sqrt(0.1 * 0.9 * 0.02) = 0.9428, p = 0.3458
    result = compare_proportions(12, 100, 8, 100)

    assert result.p_value == pytest.approx(0.3458, abs=1e-4)
    assert not result.significant
    assert result.ci_low < 0 < result.ci_high


def test_empty_or_degenerate_groups():
    assert compare_proportions(0, 0, 5, 10).p_value is None
    assert compare_proportions(0, 10, 0, 10).p_value == 1.0
    assert compare_proportions(3, 10, 0, 10).relative_lift is None  # nothing to be relative to


def test_normal_tail():
    assert normal_cdf(1.959963984540054) == pytest.approx(0.975)
    assert two_sided_p_value(1.959963984540054) == pytest.approx(0.05)
    assert two_sided_p_value(-10) == pytest.approx(1.5239e-23, rel=1e-3)


def _enroll(campaign, person, group: str, count: int, converted: int, revenue: str) -> None:
    enrollments = Enrollment.objects.bulk_create(
        Enrollment(campaign=campaign, customer=person, group=group, state="exited",
                   entered_at=at(D1, 9), exited_at=at(D1, 20)) for _ in range(count))
    Conversion.objects.bulk_create(
        Conversion(campaign=campaign, enrollment=e, customer=person, group=group,
                   revenue=Decimal(revenue), occurred_at=at(D1, 15))
        for e in enrollments[:converted])


@pytest.mark.django_db
def test_campaign_lift_against_holdout_and_control():
    campaign = Campaign.objects.create(name="Lift test")
    person, _ = customer_upsert(external_id="lift-1")
    _enroll(campaign, person, "treatment", 1000, 200, "5.00")
    _enroll(campaign, person, "holdout", 1000, 150, "5.00")
    _enroll(campaign, person, "control", 100, 8, "1.00")
    rollups_refresh()

    lift = campaign_lift(campaign=campaign)

    assert lift.groups["treatment"].rate == pytest.approx(0.2)
    assert lift.groups["treatment"].revenue == Decimal("1000.00")
    assert (lift.groups["holdout"].enrolled, lift.groups["holdout"].conversions) == (1000, 150)
    assert lift.vs_holdout.absolute_lift == pytest.approx(0.05)
    assert lift.vs_holdout.relative_lift == pytest.approx(1 / 3)
    assert lift.vs_holdout.p_value == pytest.approx(0.003256, abs=1e-5)
    assert lift.vs_holdout.ci_low == pytest.approx(0.016767, abs=1e-5)
    # 200/1000 against 8/100: lift 0.12, relative 1.5
    assert lift.vs_control.absolute_lift == pytest.approx(0.12)
    assert lift.vs_control.relative_lift == pytest.approx(1.5)
    assert lift.vs_control.significant


@pytest.mark.django_db
def test_campaign_lift_without_a_holdout_has_no_comparison():
    campaign = Campaign.objects.create(name="No holdout")
    person, _ = customer_upsert(external_id="lift-2")
    _enroll(campaign, person, "treatment", 10, 1, "0")
    rollups_refresh()

    lift = campaign_lift(campaign=campaign)

    assert lift.vs_holdout is None and lift.vs_control is None
    assert lift.groups["holdout"].rate is None

"""Reports keep their counts when customers are erased or merged: a rebuild from the raw
tables afterwards gives the same rollups as before."""

import pytest
from django.utils import timezone

from analytics.models import AudienceDay, ConversionDay, DeliveryDay, EnrollmentDay, TransitionDay
from analytics.reports import campaign_report
from analytics.rollups import rollups_rebuild
from audiences.models import Customer
from audiences.services import event_track
from audiences.services_identity import customer_erase, customer_merge
from campaigns.models import Enrollment
from tests.analytics.rollup_data import D1, D2, campaign_world

pytestmark = pytest.mark.django_db
ROLLUPS = (DeliveryDay, AudienceDay, ConversionDay, EnrollmentDay, TransitionDay)


def snapshot() -> dict:
    """Every rollup row, without its id, after a rebuild of every day from the raw tables."""
    rollups_rebuild(since=D1, until=timezone.now().date())
    return {model.__name__: sorted(
        tuple(str(value) for name, value in row.items() if name != "id")
         for row in model.objects.values()) for model in ROLLUPS}


@pytest.fixture
def world():
    world = campaign_world()
    for name in ("c1", "c4"):  # stage moves to count, and their journeys are over
        event_track(customer=world.customers[name], name="app_open")
    Enrollment.objects.update(state=Enrollment.State.EXITED, exited_at=timezone.now(),
                              exit_reason=Enrollment.ExitReason.COMPLETED)
    return world


def test_erasing_customers_changes_no_rollup_and_no_report(world):
    """c1 had two devices in one send (one targeted customer, two rows) and a conversion;
    c4 a web push opened and a conversion."""
    before = snapshot()
    report_before = campaign_report(campaign=world.campaign, since=D1, until=D2)

    for name in ("c1", "c4"):
        customer_erase(customer=world.customers[name], erased_by="test")

    assert not Customer.objects.filter(external_id__in=["c1", "c4"]).exists()
    assert snapshot() == before
    assert campaign_report(campaign=world.campaign, since=D1, until=D2) == report_before


def test_merging_customers_changes_no_rollup(world):
    before = snapshot()

    customer_merge(external_id="c5", anonymous_external_id="c2")

    assert snapshot() == before

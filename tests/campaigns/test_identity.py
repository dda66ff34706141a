"""Enrollments and conversions follow merges and erasures (campaigns' receivers of audiences'
customer_merging and customer_erasing)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audiences.services_identity import customer_erase, customer_merge
from campaigns.models import Conversion, Enrollment
from campaigns.services import journeys_tick
from tests.audiences.identity_kit import convert, enroll, journey, person

pytestmark = pytest.mark.django_db


def test_conversions_move_with_their_enrollments_on_a_merge():
    anonymous, known = person("anon-1"), person("user-1")
    conversion = convert(enroll(journey(), anonymous, state=Enrollment.State.EXITED))

    customer_merge(external_id="user-1", anonymous_external_id="anon-1")

    conversion.refresh_from_db()
    assert conversion.customer_id == known.pk
    assert conversion.enrollment.customer_id == known.pk


def test_an_erased_customers_active_enrollment_ends_and_the_tick_leaves_it_alone():
    ana = person("ana-1")
    campaign = journey()
    due = enroll(campaign, ana, next_run_at=timezone.now() - timedelta(minutes=1))
    done_at = timezone.now() - timedelta(days=3)
    done = enroll(journey("Old"), ana, state=Enrollment.State.EXITED, exited_at=done_at,
                  exit_reason=Enrollment.ExitReason.COMPLETED, next_run_at=None)

    customer_erase(customer=ana, erased_by="test")
    journeys_tick()

    due.refresh_from_db()
    done.refresh_from_db()
    assert (due.state, due.exit_reason, due.customer_id) == ("exited", "erased", None)
    assert due.next_run_at is None
    assert (done.exit_reason, done.exited_at, done.customer_id) == ("completed", done_at, None)
    assert Conversion.objects.count() == 0

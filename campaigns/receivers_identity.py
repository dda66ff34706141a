"""campaigns follows audiences' identity changes, inside audiences' transaction.

A merge moves the anonymous customer's enrollments and conversions to the known customer (a
journey both are in keeps the known customer's enrollment; the other exits as merged). An
erasure ends the customer's enrollments and unlinks them and their conversions, which stay
for the reports."""

from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns.models import Conversion, Enrollment


def _exit(enrollments, reason: str) -> int:
    return enrollments.filter(state=Enrollment.State.ACTIVE).update(
        state=Enrollment.State.EXITED, exited_at=timezone.now(), exit_reason=reason,
        next_run_at=None, waiting_for="",
    )


def on_customer_merging(sender, *, anonymous_id: int, customer_id: int, **kwargs) -> dict:
    theirs = Enrollment.objects.filter(customer_id=anonymous_id)
    known_active = Enrollment.objects.filter(
        customer_id=customer_id, campaign_id=OuterRef("campaign_id"),
        state=Enrollment.State.ACTIVE,
    )
    exited = _exit(theirs.filter(Exists(known_active)), Enrollment.ExitReason.MERGED)
    return {
        "enrollments": theirs.update(customer_id=customer_id),
        "enrollments_exited": exited,
        "conversions": Conversion.objects.filter(customer_id=anonymous_id).update(
            customer_id=customer_id),
    }


def on_customer_erasing(sender, *, customer_id: int, **kwargs) -> dict:
    enrollments = Enrollment.objects.filter(customer_id=customer_id)
    _exit(enrollments, Enrollment.ExitReason.ERASED)
    return {
        "enrollments": enrollments.update(customer=None),
        "conversions": Conversion.objects.filter(customer_id=customer_id).update(customer=None),
    }

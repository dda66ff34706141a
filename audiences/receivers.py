"""audiences' own reactions to its signals: like every receiver, they enqueue work on commit."""

from django.db import transaction

from audiences import tasks
from audiences.models import Customer, Stage


def referral_conversion(sender, *, customer_id: int, to_stage: str, transition_id=None,
                        **kwargs) -> None:
    """A referred customer's move into the conversion stage may be their referrer's
    referral_converted (the first one only: the service records it once)."""
    if to_stage != Stage.CONVERSION:
        return
    if Customer.objects.filter(pk=customer_id, referred_by__isnull=False).exists():
        transaction.on_commit(
            lambda: tasks.referral_converted_record.delay(customer_id, transition_id))

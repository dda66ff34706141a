"""notifications follows audiences' identity changes, inside audiences' transaction.

A merge moves the anonymous customer's devices and deliveries to the known customer. An
erasure deletes the customer's devices and their tokens, and keeps their deliveries for the
reports without the customer or anything personal."""

from django.db.models import Exists, OuterRef, Q

from notifications.models import Delivery, Device
from notifications.services import PROVIDER_MODELS

ERASED_UNSENT = [Delivery.Status.QUEUED, Delivery.Status.SENDING]


def on_customer_merging(sender, *, anonymous_id: int, customer_id: int, **kwargs) -> dict:
    devices = Device.objects.filter(customer_id=anonymous_id).update(customer_id=customer_id)
    theirs = Delivery.objects.filter(customer_id=anonymous_id)
    # A send that reached both customers: a second row for the known customer would break
    # the one-row-per-(send, customer, device) rule, so these rows stay, unlinked, counted.
    known = Delivery.objects.filter(customer_id=customer_id, send_id=OuterRef("send_id"))
    clashing = theirs.filter(
        Q(Exists(known.filter(device__isnull=True)), device__isnull=True)
        | Q(Exists(known.filter(device_id=OuterRef("device_id"))), device__isnull=False)
    )
    unlinked = clashing.update(customer=None)
    moved = theirs.update(customer_id=customer_id)
    return {"devices": devices, "deliveries": moved, "deliveries_unlinked": unlinked}


def on_customer_erasing(sender, *, customer_id: int, erasure_id: int, **kwargs) -> dict:
    deliveries = Delivery.objects.filter(customer_id=customer_id)
    deliveries.filter(status__in=ERASED_UNSENT).update(
        status=Delivery.Status.SKIPPED, reason=Delivery.Reason.CUSTOMER_ERASED, not_before=None
    )
    # Kept: send, kind, app, status, reason, times. Gone: who, which device, what the
    # provider said about it.
    anonymised = deliveries.update(customer=None, device=None, erasure_id=erasure_id, error="",
                                   provider_message_id="")
    devices = Device.objects.filter(customer_id=customer_id)
    count = devices.count()
    for model in PROVIDER_MODELS.values():  # the token rows; each takes its Device along
        model.objects.filter(journey_device__in=devices).delete()
    return {"devices": count, "deliveries": anonymised}

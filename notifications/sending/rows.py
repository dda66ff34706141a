"""The rows a batch sends, read as plain values.

A batch reads each delivery with its customer and device. As Django model instances (four
per row, each running ``__init__`` and its signals) that cost more than rendering the message,
so the rows come from one ``values_list`` query into small slotted objects that carry exactly
what sending reads. The customer's derived fields are the model's own properties, so a
template sees the same ``customer`` here as in the preview and the save check."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from audiences.models import Customer
from notifications.models import Delivery, DeliveryBatch, Device


class CustomerValues:
    """What rendering and the consent check read of a customer (rendering.customer_context)."""

    __slots__ = ("external_id", "first_name", "last_name", "locale", "time_zone", "stage",
                 "referral_code", "attributes", "push_opt_out")

    full_name = Customer.full_name
    referral_link = Customer.referral_link

    def __init__(self, values):
        for name, value in zip(self.__slots__, values, strict=True):
            setattr(self, name, value)


@dataclass(slots=True)
class DeviceValues:
    kind: str
    environment: str
    can_receive: bool
    token: str  # the provider row's registration id
    p256dh: str
    auth: str


@dataclass(slots=True)
class SendRow:
    pk: int
    attempts: int
    application_id: str
    customer_id: int
    customer: CustomerValues
    device: DeviceValues | None  # None when the device is gone
    error: str  # as stored; rendering sets it for a row it skips


_CUSTOMER = [f"customer__{name}" for name in CustomerValues.__slots__]
_DEVICE = ["device_id", "device__kind", "device__environment", "device__permission",
           "device__is_active", "device__apns__registration_id", "device__fcm__registration_id",
           "device__webpush__registration_id", "device__webpush__p256dh",
           "device__webpush__auth"]
_FIELDS = ["pk", "attempts", "application_id", "customer_id", "error", *_CUSTOMER, *_DEVICE]


def rows_to_send(batch: DeliveryBatch, now: datetime) -> list[SendRow]:
    """Queued rows, plus rows left 'sending' by a worker that died (their outcome is unknown),
    in id order."""
    found = (
        Delivery.objects.filter(
            send_id=batch.send_id, batch_no=batch.number,
            status__in=[Delivery.Status.QUEUED, Delivery.Status.SENDING],
        ).filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("pk").values_list(*_FIELDS)
    )
    customer_end = 5 + len(_CUSTOMER)
    return [
        SendRow(pk=values[0], attempts=values[1], application_id=values[2],
                customer_id=values[3], error=values[4],
                customer=CustomerValues(values[5:customer_end]),
                device=_device(values[customer_end:]))
        for values in found
    ]


def _device(values: tuple) -> DeviceValues | None:
    (device_id, kind, environment, permission, is_active, apns_token, fcm_token, webpush_token,
     p256dh, auth) = values
    if device_id is None:
        return None
    return DeviceValues(
        kind=kind, environment=environment,
        can_receive=is_active and permission != Device.Permission.DENIED,  # Device.can_receive
        token={"apns": apns_token, "fcm": fcm_token, "webpush": webpush_token}[kind] or "",
        p256dh=p256dh or "", auth=auth or "",
    )

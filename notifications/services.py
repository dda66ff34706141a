"""Writes on devices. Keyword-only arguments, one transaction each."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from audiences.models import Customer
from notifications.models import Device

PROVIDER_MODELS = {
    Device.Kind.APNS: APNSDevice,
    Device.Kind.FCM: GCMDevice,
    Device.Kind.WEBPUSH: WebPushDevice,
}
DEVICE_FIELDS = ("platform", "app_version", "locale", "time_zone", "environment", "permission")
WEBPUSH_FIELDS = ("p256dh", "auth", "browser")
REGISTER_ATTEMPTS = 3  # a lost race on the unique token index is retried, not reported


def device_register(*, customer: Customer, kind: str, token: str,
                    application_id: str | None = None, **fields) -> tuple[Device, bool]:
    """Register a push token for a customer. Returns (device, created).

    The same token again updates its row; a token registered by another customer (a logout and
    login on the same phone) moves to this customer. The unique index on the provider's token
    column keeps one row per token when two registrations race."""
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            return _device_register_once(
                customer=customer, kind=kind, token=token, application_id=application_id, **fields
            )
        except IntegrityError:
            if attempt == REGISTER_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def _device_register_once(*, customer, kind, token, application_id, **fields):
    model = PROVIDER_MODELS[Device.Kind(kind)]
    webpush = {name: fields.pop(name) for name in WEBPUSH_FIELDS if name in fields}
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise TypeError(f"device_register() got unknown fields: {sorted(unknown)}")
    provider_row = model.objects.select_for_update().filter(registration_id=token).first()
    created = provider_row is None
    if created:
        provider_row = model(registration_id=token)
        if kind == Device.Kind.FCM:
            provider_row.cloud_message_type = "FCM"
    provider_row.active = True
    provider_row.application_id = application_id
    for name, value in webpush.items():
        setattr(provider_row, name, value)
    with transaction.atomic():  # savepoint: a racing insert raises here and is retried whole
        provider_row.save()
    device = Device.objects.select_for_update().filter(**{kind: provider_row}).first()
    if device is None:
        device = Device(kind=kind, **{kind: provider_row})
        created = True
    device.customer = customer
    device.is_active, device.deactivated_reason = True, ""
    device.last_seen_at = timezone.now()
    for name, value in fields.items():
        setattr(device, name, value)
    device.full_clean(exclude=["apns", "fcm", "webpush"], validate_unique=False)
    device.save()
    return device, created


@transaction.atomic
def device_update(*, device: Device, **fields) -> Device:
    unknown = set(fields) - set(DEVICE_FIELDS)
    if unknown:
        raise TypeError(f"device_update() got unknown fields: {sorted(unknown)}")
    for name, value in fields.items():
        setattr(device, name, value)
    device.last_seen_at = timezone.now()
    device.full_clean(exclude=["apns", "fcm", "webpush"], validate_unique=False)
    device.save()
    return device


@transaction.atomic
def device_delete(*, device: Device) -> None:
    """Forget a device: the provider row goes too (its token must not be pushed again)."""
    provider_row = device.provider_device
    device.delete()
    provider_row.delete()


def device_deactivate(*, device: Device, reason: str) -> Device:
    if not reason:
        raise ValidationError("A deactivated device needs a reason.")
    Device.objects.filter(pk=device.pk).update(is_active=False, deactivated_reason=reason)
    type(device.provider_device).objects.filter(pk=device.provider_device.pk).update(active=False)
    device.is_active, device.deactivated_reason = False, reason
    return device

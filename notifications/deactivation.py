"""Turning devices off: our row and django-push-notifications' row, so nobody pushes to them."""

from push_notifications.models import APNSDevice, GCMDevice, WebPushDevice

from notifications.models import Device

PROVIDER_MODELS = {
    Device.Kind.APNS: APNSDevice,
    Device.Kind.FCM: GCMDevice,
    Device.Kind.WEBPUSH: WebPushDevice,
}


def devices_deactivate(reasons: dict[int, str]) -> int:
    """Deactivate devices (id -> reason) and their provider rows; the caller's transaction."""
    by_reason: dict[str, list[int]] = {}
    for device_id, reason in reasons.items():
        by_reason.setdefault(reason, []).append(device_id)
    for reason, ids in by_reason.items():
        Device.objects.filter(pk__in=ids).update(is_active=False, deactivated_reason=reason)
    for model in PROVIDER_MODELS.values():
        model.objects.filter(journey_device__in=list(reasons)).update(active=False)
    return len(reasons)

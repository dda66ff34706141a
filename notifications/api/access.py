"""notifications' sections of a customer's data export (right of access): their devices, with
push tokens masked, and every delivery made to them."""

from rest_framework import serializers

from audiences.access import register_access_section
from notifications.models import Delivery, Device

TOKEN_SHOWN = 8  # trailing characters of a push token: enough to recognise a device by
DELIVERIES_CHUNK = 2000  # deliveries read per query while the export streams


class DeviceExportSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=Device.Kind.choices)
    token = serializers.CharField(
        help_text=f"Masked: its last {TOKEN_SHOWN} characters, after an ellipsis. A push "
                  "token lets whoever holds it (with the app's credentials) reach the device, "
                  "so the file never carries it whole.",
    )
    platform = serializers.CharField()
    app_version = serializers.CharField()
    locale = serializers.CharField()
    time_zone = serializers.CharField()
    environment = serializers.CharField()
    permission = serializers.CharField()
    is_active = serializers.BooleanField()
    deactivated_reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()


class DeliveryExportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    send_id = serializers.IntegerField()
    template = serializers.CharField(help_text="The name of the message's template.")
    kind = serializers.CharField(help_text="apns, fcm or webpush; empty when skipped.")
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    opened_at = serializers.DateTimeField(allow_null=True)


def masked(token: str) -> str:
    return "…" + token[-TOKEN_SHOWN:]


def _devices(customer) -> list[dict]:
    devices = Device.objects.filter(customer=customer).select_related("apns", "fcm", "webpush")
    fields = list(DeviceExportSerializer().fields)
    return [{name: masked(device.token) if name == "token" else getattr(device, name)
             for name in fields}
            for device in devices.order_by("created_at", "pk")]


def _deliveries(customer):
    rows = Delivery.objects.filter(customer=customer).order_by("created_at", "pk")
    columns = ("id", "send_id", "send__template__name", "kind", "status", "reason",
               "created_at", "sent_at", "received_at", "opened_at")
    names = list(DeliveryExportSerializer().fields)
    return (dict(zip(names, row, strict=True))
            for row in rows.values_list(*columns).iterator(chunk_size=DELIVERIES_CHUNK))


def register_sections() -> None:
    register_access_section("devices", rows=_devices, schema=DeviceExportSerializer)
    register_access_section("deliveries", rows=_deliveries, schema=DeliveryExportSerializer)

"""Shapes of the device endpoints. Validation only: the writes are notifications.services."""

from push_notifications.models import WebPushDevice
from rest_framework import serializers

from audiences.api.serializers import LOCALE_PATTERN, TimeZoneField
from journeyhub.api_errors import StrictFieldsMixin
from notifications.models import Device
from notifications.tokens import (
    BROWSERS,
    TOKEN_MAX,
    default_platform,
    platform_problem,
    token_errors,
    token_normalised,
)


class DeviceFieldsSerializer(StrictFieldsMixin, serializers.Serializer):
    """What describes a device besides its token; all optional (absent keeps the value)."""

    platform = serializers.ChoiceField(
        Device.Platform.choices, required=False,
        help_text="Defaults to ios for apns and web for webpush; required for fcm.",
    )
    app_version = serializers.CharField(max_length=50, required=False, allow_blank=True)
    locale = serializers.RegexField(LOCALE_PATTERN, max_length=35, required=False,
                                    allow_blank=True)
    time_zone = TimeZoneField(required=False, allow_blank=True)
    environment = serializers.ChoiceField(Device.Environment.choices, required=False)
    permission = serializers.ChoiceField(Device.Permission.choices, required=False)

    def platform_errors(self, kind: str, platform: str | None) -> dict:
        problem = platform_problem(kind, platform)
        return {"platform": [problem]} if problem else {}


class DeviceUpdateSerializer(DeviceFieldsSerializer):
    """PATCH: ``context["device"]`` is the device being changed."""

    def validate(self, data):
        errors = self.platform_errors(self.context["device"].kind, data.get("platform"))
        if errors:
            raise serializers.ValidationError(errors)
        return data


class DeviceRegisterSerializer(DeviceFieldsSerializer):
    kind = serializers.ChoiceField(Device.Kind.choices)
    token = serializers.CharField(
        max_length=TOKEN_MAX,
        help_text="APNs: the device token in hex. FCM: the registration token. Web Push: the "
                  "subscription's endpoint URL.",
    )
    application_id = serializers.CharField(
        max_length=64, required=False, allow_null=True,
        help_text="Which app's credentials push to this device, when there are several.",
    )
    p256dh = serializers.CharField(
        max_length=WebPushDevice._meta.get_field("p256dh").max_length, required=False,
        help_text="Web Push only (required): the subscription's p256dh key, base64url.",
    )
    auth = serializers.CharField(
        max_length=WebPushDevice._meta.get_field("auth").max_length, required=False,
        help_text="Web Push only (required): the subscription's auth secret, base64url.",
    )
    browser = serializers.ChoiceField(sorted(BROWSERS), required=False,
                                      help_text="Web Push only.")

    def validate(self, data):
        kind = data["kind"]
        data["platform"] = data.get("platform") or default_platform(kind)
        errors = self.platform_errors(kind, data["platform"])
        if data["platform"] is None:
            errors["platform"] = [f"Say which platform this {kind} device runs on."]
        errors.update({name: [reason] for name, reason in token_errors(kind, data).items()})
        if errors:
            raise serializers.ValidationError(errors)
        data["token"] = token_normalised(kind, data["token"])
        if "browser" in data:
            data["browser"] = BROWSERS[data["browser"]]
        return data


class DeviceSerializer(serializers.ModelSerializer):
    token = serializers.CharField(read_only=True)
    application_id = serializers.CharField(source="provider_device.application_id",
                                           read_only=True, allow_null=True)
    browser = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id", "kind", "token", "application_id", "platform", "app_version", "locale",
            "time_zone", "environment", "permission", "browser", "is_active", "created_at",
            "last_seen_at",
        ]
        read_only_fields = fields

    def get_browser(self, device: Device) -> str | None:
        if device.kind != Device.Kind.WEBPUSH:
            return None
        return device.webpush.browser.lower()


class DeliveryReportSerializer(StrictFieldsMixin, serializers.Serializer):
    token = serializers.CharField(
        max_length=200, help_text="The jh_token from the notification's data."
    )


class DeliveryOpenedSerializer(DeliveryReportSerializer):
    action_id = serializers.RegexField(
        r"^[A-Za-z0-9_-]{1,32}$", max_length=32, required=False,
        help_text="The id of the action button tapped (jh_actions / the category's action); "
                  "leave out for a tap on the notification itself.",
    )

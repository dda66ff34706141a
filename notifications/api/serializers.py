"""Shapes of the device endpoints. Validation only: the writes are notifications.services."""

import re
from urllib.parse import urlsplit

from push_notifications.models import BROWSER_TYPES, APNSDevice, WebPushDevice
from rest_framework import serializers

from audiences.api.serializers import LOCALE_PATTERN, TimeZoneField
from journeyhub.api_errors import StrictFieldsMixin
from notifications.models import Device

APNS_TOKEN_MAX = APNSDevice._meta.get_field("registration_id").max_length
APNS_TOKEN = re.compile(rf"^[0-9a-f]{{64,{APNS_TOKEN_MAX}}}$")
# FCM registration tokens are opaque; today ~160 characters of this alphabet.
FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{32,1024}$")
# Tokens sit in unique btree indexes, whose entries PostgreSQL caps at ~2.7 KB.
TOKEN_MAX = 2048
BASE64URL = re.compile(r"^[A-Za-z0-9_\-]+={0,2}$")
BROWSERS = {value.lower(): value for value, _ in BROWSER_TYPES}
# Where each provider runs; FCM serves all three.
KIND_PLATFORMS = {
    Device.Kind.APNS: [Device.Platform.IOS],
    Device.Kind.FCM: [Device.Platform.IOS, Device.Platform.ANDROID, Device.Platform.WEB],
    Device.Kind.WEBPUSH: [Device.Platform.WEB],
}


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
        if platform is not None and platform not in KIND_PLATFORMS[kind]:
            allowed = " or ".join(KIND_PLATFORMS[kind])
            return {"platform": [f"A {kind} device runs on {allowed}."]}
        return {}


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
        data["platform"] = data.get("platform") or _default_platform(kind)
        errors = self.platform_errors(kind, data["platform"])
        if data["platform"] is None:
            errors["platform"] = [f"Say which platform this {kind} device runs on."]
        errors.update(_token_errors(kind, data))
        if errors:
            raise serializers.ValidationError(errors)
        if kind == Device.Kind.APNS:
            data["token"] = data["token"].lower()  # hex is case-free; one token, one row
        if "browser" in data:
            data["browser"] = BROWSERS[data["browser"]]
        return data


def _default_platform(kind: str) -> str | None:
    platforms = KIND_PLATFORMS[kind]
    return platforms[0] if len(platforms) == 1 else None


def _token_errors(kind: str, data: dict) -> dict:
    token = data["token"]
    if kind == Device.Kind.APNS and not APNS_TOKEN.match(token.lower()):
        return {"token": ["An APNs token is at least 64 hexadecimal digits."]}
    if kind == Device.Kind.FCM and not FCM_TOKEN.match(token):
        return {"token": ["This is not an FCM registration token."]}
    if kind != Device.Kind.WEBPUSH:
        extra = [name for name in ("p256dh", "auth", "browser") if name in data]
        return {name: ["Only for webpush devices."] for name in extra}
    errors = {}
    if not token.isascii() or not _is_https_url(token):
        errors["token"] = ["A Web Push token is the subscription's https endpoint URL."]
    for name in ("p256dh", "auth"):
        if name not in data:
            errors[name] = ["This field is required for webpush devices."]
        elif not BASE64URL.match(data[name]):
            errors[name] = ["Must be base64url."]
    return errors


def _is_https_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme == "https" and bool(parts.hostname)


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

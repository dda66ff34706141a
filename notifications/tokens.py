"""What a push token and its device description must look like, per provider: one set of rules
for the app's registration and for bulk imports."""

import re
from urllib.parse import urlsplit

from push_notifications.models import BROWSER_TYPES, APNSDevice

from notifications.models import Device

APNS_TOKEN_MAX = APNSDevice._meta.get_field("registration_id").max_length
APNS_TOKEN = re.compile(rf"^[0-9a-f]{{64,{APNS_TOKEN_MAX}}}$")
# FCM registration tokens are opaque; today ~160 characters of this alphabet.
FCM_TOKEN = re.compile(r"^[A-Za-z0-9_:\-]{32,1024}$")
# Tokens sit in unique btree indexes, whose entries PostgreSQL caps at ~2.7 KB.
TOKEN_MAX = 2048
BASE64URL = re.compile(r"^[A-Za-z0-9_\-]+={0,2}$")
BROWSERS = {value.lower(): value for value, _ in BROWSER_TYPES}
WEBPUSH_ONLY = ("p256dh", "auth", "browser")
# Where each provider runs; FCM serves all three.
KIND_PLATFORMS = {
    Device.Kind.APNS: [Device.Platform.IOS],
    Device.Kind.FCM: [Device.Platform.IOS, Device.Platform.ANDROID, Device.Platform.WEB],
    Device.Kind.WEBPUSH: [Device.Platform.WEB],
}


def default_platform(kind: str) -> str | None:
    platforms = KIND_PLATFORMS[kind]
    return platforms[0] if len(platforms) == 1 else None


def platform_problem(kind: str, platform: str | None) -> str | None:
    if platform is not None and platform not in KIND_PLATFORMS[kind]:
        return f"A {kind} device runs on {' or '.join(KIND_PLATFORMS[kind])}."
    return None


def token_errors(kind: str, data: dict) -> dict[str, str]:
    """Field -> reason for a token (and Web Push keys) that cannot be this kind's."""
    token = data["token"]
    if kind == Device.Kind.APNS and not APNS_TOKEN.match(token.lower()):
        return {"token": f"An APNs token is at least 64 hexadecimal digits (0-9, a-f; at most "
                         f"{APNS_TOKEN_MAX})."}
    if kind == Device.Kind.FCM and not FCM_TOKEN.match(token):
        return {"token": "This is not an FCM registration token: one is 32 to 1,024 characters "
                         "of letters, digits, '_', ':' and '-'."}
    if kind != Device.Kind.WEBPUSH:
        return {name: "Only for webpush devices." for name in WEBPUSH_ONLY if data.get(name)}
    errors = {}
    if len(token) > TOKEN_MAX or not token.isascii() or not _is_https_url(token):
        errors["token"] = (f"A Web Push token is the subscription's https endpoint URL "
                           f"(https://..., ASCII, at most {TOKEN_MAX:,} characters).")
    for name in ("p256dh", "auth"):
        if not data.get(name):
            errors[name] = "This field is required for webpush devices."
        elif not BASE64URL.match(data[name]):
            errors[name] = "Must be base64url."
    return errors


def token_normalised(kind: str, token: str) -> str:
    """APNs tokens are hex, whose case carries nothing: one token, one row."""
    return token.lower() if kind == Device.Kind.APNS else token


def _is_https_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    return parts.scheme == "https" and bool(parts.hostname)

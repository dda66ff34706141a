"""The FCM HTTP v1 message of a PushMessage, as a dict ready for ``json.dumps``.

The same content firebase-admin's ``messaging.Message`` encodes to (the provider tests compare
the two field by field), built directly: its message classes and their encoder validate each of
a few dozen fields per message, and cost more than the rest of our message building. A value it
would refuse raises ValueError with its wording, and the message fails as ENCODING."""

from .base import PushMessage
from .common import web_push_topic


def fcm_v1_message(message: PushMessage, now: int) -> dict:
    """The ``message`` object of a ``messages:send`` request; ``now`` is the Unix time, for
    the apns-expiration header."""
    if not message.token:
        raise ValueError("Message.token must be a non-empty string.")
    if message.ttl_seconds < 0:
        raise ValueError("AndroidConfig.ttl must not be negative.")
    look = message.presentation
    high = message.priority == "high"
    collapse = message.collapse_key or None  # set by the pipeline on every message
    apns_headers = {
        # A background push goes at priority 5 whatever the template says (Apple's rule).
        "apns-priority": "10" if high and not look.silent else "5",
        "apns-expiration": str(now + message.ttl_seconds),
    }
    webpush_headers = {"TTL": str(message.ttl_seconds), "Urgency": "high" if high else "normal"}
    if collapse:
        apns_headers["apns-collapse-id"] = collapse
        webpush_headers["Topic"] = web_push_topic(collapse)
    data = {str(key): str(value) for key, value in message.data.items()}
    data.update(look.data_extras)
    android = {"collapse_key": collapse, "priority": "high" if high else "normal",
               "ttl": f"{message.ttl_seconds}s"}
    if look.silent:
        apns_headers["apns-push-type"] = "background"
        # Data only: the app's handler receives it, nothing is shown. Android delivers a
        # normal-priority data message when the device wakes, a high one at once.
        encoded = {
            "android": _present(android),
            "apns": {"headers": apns_headers, "payload": {"aps": {"content-available": 1}}},
            "webpush": {"headers": webpush_headers},
        }
    else:
        encoded = _alert(message, android, collapse, apns_headers, webpush_headers)
    encoded["data"] = data
    encoded["token"] = message.token
    return _present(encoded)


def _alert(message: PushMessage, android: dict, collapse: str | None, apns_headers: dict,
           webpush_headers: dict) -> dict:
    look = message.presentation
    # FCM refuses a web link that is not https; deep links reach apps through data instead.
    link = message.url if message.url.startswith("https://") else None
    badge = look.badge if look.badge is not None and not look.badge_increment else None
    # Android shows the notification block itself, before any app code runs: the tag is what
    # makes a second copy replace the first in the tray.
    android["notification"] = _present({
        "sound": look.sound or None, "tag": collapse,
        "channel_id": look.android_channel_id or None, "notification_count": badge,
    })
    apns = {"headers": apns_headers}
    if aps := _aps(look, badge):
        apns["payload"] = {"aps": aps}
    webpush = {"headers": webpush_headers}
    if collapse:
        webpush["notification"] = {"tag": collapse}
    if link:
        webpush["fcm_options"] = {"link": link}
    return {
        "notification": _present({"body": message.body, "title": message.title,
                                  "image": message.image_url or None}),
        "android": _present(android), "apns": apns, "webpush": webpush,
    }


def _aps(look, badge: int | None) -> dict | None:
    """The aps of FCM's APNs block, when the template sets anything in it."""
    custom = {key: look.apns_aps[key] for key in ("interruption-level", "relevance-score")
              if key in look.apns_aps}
    if not (badge is not None or look.sound or look.thread_id or look.category or custom
            or look.badge_increment):
        return None
    aps = _present({"badge": badge, "sound": look.sound or None,
                    "category": look.category or None, "thread-id": look.thread_id or None})
    if look.badge_increment:
        aps["mutable-content"] = 1
    return {**aps, **custom}


def _present(values: dict) -> dict:
    """Without the empty values firebase-admin leaves out (None, [], {})."""
    return {key: value for key, value in values.items() if value not in (None, [], {})}

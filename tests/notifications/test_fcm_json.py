"""The FCM HTTP v1 JSON we build is what firebase-admin's message classes encode, for every
kind of message (the reference below is how fcm.py built its messages with them)."""

import itertools
import warnings

import pytest
from firebase_admin import messaging

from notifications.providers.base import Action, Presentation, PushMessage
from notifications.providers.common import web_push_topic
from notifications.providers.fcm_json import fcm_v1_message

NOW = 1_800_000_000

LOOKS = [
    Presentation(),
    Presentation(kind="silent"),
    Presentation(kind="silent", badge=3, sound="default"),
    Presentation(badge=0),
    Presentation(badge=5, badge_increment=True),
    Presentation(sound="chime.caf", thread_id="orders", android_channel_id="promos"),
    Presentation(interruption_level="time-sensitive", relevance_score=0.0, category="CART",
                 actions=(Action(id="open", title="Open", url="app://cart"),)),
    Presentation(interruption_level="passive", relevance_score=0.7, badge=2),
]


def messages():
    for look, priority, collapse, url, image, data, ttl in itertools.product(
            LOOKS, ["normal", "high"], ["", "jh-42", "order status/1"],
            ["", "https://example.com/x", "app://deep"], ["", "https://example.com/i.png"],
            [{}, {"k": "v", "n": 1}], [0, 3600]):
        yield PushMessage(delivery_id=42, kind="fcm", token="tok-1", title="Hi Ana", body="",
                          image_url=image, url=url, data=data, priority=priority,
                          ttl_seconds=ttl, collapse_key=collapse, presentation=look)


@pytest.mark.parametrize("message", list(messages()))
def test_our_fcm_json_is_what_firebase_admin_encodes(message):
    expected = messaging._MessagingService.encode_message(firebase_admin_message(message, NOW))

    assert fcm_v1_message(message, NOW) == expected


def test_what_firebase_admin_refuses_we_refuse_too():
    for broken in (PushMessage(delivery_id=1, kind="fcm", token="", title="t", body="b"),
                   PushMessage(delivery_id=1, kind="fcm", token="x", title="t", body="b",
                               ttl_seconds=-1)):
        with pytest.raises(ValueError):
            messaging._MessagingService.encode_message(firebase_admin_message(broken, NOW))
        with pytest.raises(ValueError):
            fcm_v1_message(broken, NOW)


def firebase_admin_message(message: PushMessage, now: int) -> messaging.Message:
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
    if look.silent:
        apns_headers["apns-push-type"] = "background"
        parts = {
            # Data only: the app's handler receives it, nothing is shown. Android delivers a
            # normal-priority data message when the device wakes, a high one at once.
            "data": data or None,
            "android": messaging.AndroidConfig(priority="high" if high else "normal",
                                               ttl=message.ttl_seconds, collapse_key=collapse),
            "apns": messaging.APNSConfig(headers=apns_headers, payload=messaging.APNSPayload(
                aps=messaging.Aps(content_available=True))),
            "webpush": messaging.WebpushConfig(headers=webpush_headers),
        }
    else:
        parts = _alert_parts(message, data, collapse, apns_headers, webpush_headers)
    # 7.x deprecates ``token`` in favour of Firebase installation ids, but apps register FCM
    # registration tokens (getToken()) and the v1 API takes them; firebase-admin silences this
    # warning the same way in its own multicast helper.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return messaging.Message(token=message.token, **parts)


def _alert_parts(message: PushMessage, data: dict, collapse: str | None, apns_headers: dict,
                 webpush_headers: dict) -> dict:
    look = message.presentation
    high = message.priority == "high"
    # FCM refuses a web link that is not https; deep links reach apps through data instead.
    link = message.url if message.url.startswith("https://") else None
    aps = _aps(look)
    return {
        "notification": messaging.Notification(
            title=message.title, body=message.body, image=message.image_url or None
        ),
        "data": data or None,
        # Android shows the notification block itself, before any app code runs: the tag is
        # what makes a second copy replace the first in the tray.
        "android": messaging.AndroidConfig(
            priority="high" if high else "normal", ttl=message.ttl_seconds,
            collapse_key=collapse, notification=messaging.AndroidNotification(
                tag=collapse, channel_id=look.android_channel_id or None,
                sound=look.sound or None,
                notification_count=(look.badge if look.badge is not None
                                    and not look.badge_increment else None),
            ),
        ),
        "apns": messaging.APNSConfig(
            headers=apns_headers, payload=messaging.APNSPayload(aps=aps) if aps else None),
        "webpush": messaging.WebpushConfig(
            headers=webpush_headers,
            notification=messaging.WebpushNotification(tag=collapse) if collapse else None,
            fcm_options=messaging.WebpushFCMOptions(link=link) if link else None,
        ),
    }


def _aps(look) -> messaging.Aps | None:
    """The aps of FCM's APNs block, when the template sets anything in it."""
    custom = {key: look.apns_aps[key] for key in ("interruption-level", "relevance-score")
              if key in look.apns_aps}
    badge = look.badge if look.badge is not None and not look.badge_increment else None
    if not (badge is not None or look.sound or look.thread_id or look.category or custom
            or look.badge_increment):
        return None
    return messaging.Aps(badge=badge, sound=look.sound or None, thread_id=look.thread_id or None,
                         category=look.category or None,
                         mutable_content=True if look.badge_increment else None,
                         custom_data=custom or None)

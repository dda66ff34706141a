"""What a message weighs at each provider, and how a template's look becomes the Presentation
its messages share.

A payload is measured as its provider receives it, built by the provider's own code with
everything sending adds: the data's ``delivery_id`` and signed ``jh_token``, the collapse
identity, the buttons' and badge keys. At save a template is measured with the largest of
these (the delivery id of 2^63 - 1); at send each message is measured for its own provider,
and one over the limit is skipped (render_error) rather than refused by the provider."""

from dataclasses import replace

from notifications.models import Template
from notifications.providers.apns import apns_body, apns_payload
from notifications.providers.base import Action, Presentation, PushMessage
from notifications.providers.webpush import payload as webpush_payload
from notifications.tracking import tracking_token

# APNs refuses a payload over 4 KB (PayloadTooLarge), FCM a message over 4 KB, and push
# services a Web Push body over 4 KB once encrypted.
PAYLOAD_LIMITS = {"apns": 4096, "fcm": 4096, "webpush": 4096}
KIND_LABELS = {"apns": "APNs", "fcm": "FCM", "webpush": "Web Push"}
# aes128gcm (RFC 8188) as pywebpush writes it, one record: a header of salt (16), record size
# (4), key id length (1) and our public key (65), then a padding delimiter (1) and the tag (16).
WEBPUSH_ENCRYPTION_BYTES = 16 + 4 + 1 + 65 + 1 + 16
LARGEST_DELIVERY_ID = 2**63 - 1
# For the bound below: a character of a personalised field takes at most 6 bytes in JSON
# (\u001f), and a field appears at most twice in one payload (a URL in data and as a link);
# its key and punctuation take at most FIELD_SLACK bytes.
BYTES_PER_CHARACTER = 12
FIELD_SLACK = 64


def template_presentation(template: Template) -> Presentation:
    """How the template's messages show: built once per send, shared by its messages."""
    return Presentation(
        kind=template.kind, badge=template.badge if template.badge_mode else None,
        badge_increment=template.badge_mode == Template.BadgeMode.INCREMENT,
        sound=template.sound, thread_id=template.thread_id,
        android_channel_id=template.android_channel_id,
        interruption_level=template.interruption_level,
        relevance_score=template.relevance_score,
        actions=tuple(Action(id=a["id"], title=a["title"], url=a.get("url", ""))
                      for a in template.actions or []),
        category=template.category,
    )


def payload_bytes(message: PushMessage) -> int:
    """The payload's size as ``message.kind``'s provider receives it. Raises ValueError for a
    message firebase-admin refuses to encode (FCM)."""
    if message.kind == "apns":
        return len(apns_body(apns_payload(message)))
    if message.kind == "fcm":
        # Imported here: firebase-admin is loaded only by processes that meet FCM.
        from notifications.providers.fcm import fcm_payload_bytes
        return fcm_payload_bytes(message)
    return len(webpush_payload(message)) + WEBPUSH_ENCRYPTION_BYTES


def largest_message(kind: str, template: Template, *, title: str, body: str, image_url: str,
                    url: str, data: dict[str, str]) -> PushMessage:
    """The message as sending would make it, with the largest id sending can add."""
    largest = LARGEST_DELIVERY_ID
    return PushMessage(
        delivery_id=largest, kind=kind, token="measured-without-it", title=title, body=body,
        image_url=image_url, url=url,
        data={**data, "delivery_id": str(largest), "jh_token": tracking_token(largest)},
        priority=template.priority, ttl_seconds=template.ttl_seconds,
        collapse_key=template.collapse_key or f"jh-{largest}",
        presentation=template_presentation(template),
    )


def size_problems(template: Template, *, title: str, body: str, image_url: str, url: str,
                  data: dict[str, str]) -> list[str]:
    """One problem per provider whose limit the rendered message would exceed."""
    problems = []
    for kind, limit in PAYLOAD_LIMITS.items():
        message = largest_message(kind, template, title=title, body=body, image_url=image_url,
                                  url=url, data=data)
        try:
            size = payload_bytes(message)
        except ValueError as error:
            problems.append(f"{KIND_LABELS[kind]} refuses the message: {error}")
            continue
        if size > limit:
            problems.append(f"the {KIND_LABELS[kind]} payload is {size:,} bytes with what "
                            f"sending adds, over its {limit:,}-byte limit")
    return problems


class SizeGuard:
    """Measures a batch's messages (one provider) against its limit. Most messages are far
    below it: a bound from the lengths of their personalised fields proves it without
    building the payload, which is built and measured only for messages near the limit."""

    def __init__(self, kind: str, template: Template, presentation: Presentation):
        self.limit = PAYLOAD_LIMITS[kind]
        empty = largest_message(kind, template, title="", body="", image_url="", url="",
                                data={})
        self.base = payload_bytes(replace(empty, presentation=presentation))

    def problem(self, message: PushMessage) -> str | None:
        """Why the message cannot go (over the limit), or None."""
        fields = (message.title, message.body, message.image_url, message.url)
        bound = self.base + sum(FIELD_SLACK + BYTES_PER_CHARACTER * len(text) for text in fields)
        bound += sum(FIELD_SLACK + BYTES_PER_CHARACTER * (len(key) + len(str(value)))
                     for key, value in message.data.items()
                     if key not in ("delivery_id", "jh_token"))
        if bound <= self.limit:
            return None
        try:
            size = payload_bytes(message)
        except ValueError:
            return None  # the provider's own refusal says why (ENCODING)
        if size <= self.limit:
            return None
        return (f"the {KIND_LABELS[message.kind]} payload is {size:,} bytes, over its "
                f"{self.limit:,}-byte limit")

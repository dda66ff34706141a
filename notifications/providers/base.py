"""What the delivery pipeline hands a push provider, and what it gets back.

A backend is chosen in settings like Django's EMAIL_BACKEND (``PUSH_BACKEND``) and sends one
batch (at most 500 messages, one provider kind and application id) per call. It reports a
result per message; it raises only for errors that concern the whole batch."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

MAX_BATCH_SIZE = 500  # FCM send_each refuses more; APNs and Web Push use the same unit of work


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # temporary (429, 5xx, timeout): try again after retry_after seconds
    FAILED = "failed"  # permanent for this message (e.g. payload rejected); device stays active
    DEAD_TOKEN = "dead_token"  # the token will never work again: deactivate the device


@dataclass(frozen=True)
class PushMessage:
    """One rendered notification for one device."""

    delivery_id: int
    kind: str  # "apns" | "fcm" | "webpush"
    token: str  # APNs device token, FCM registration token, or Web Push endpoint URL
    title: str
    body: str
    application_id: str = "default"
    image_url: str = ""
    url: str = ""  # deep link or web URL opened on tap
    data: dict[str, str] = field(default_factory=dict)  # includes the signed tracking token
    priority: str = "normal"  # "normal" | "high"
    ttl_seconds: int = 86400
    # What a device replaces a notification by (FCM tag and collapse key, APNs collapse id,
    # Web Push Topic and tag): the same for every copy of one delivery, so a message sent again
    # after a crash replaces the first copy instead of showing twice.
    collapse_key: str = ""
    environment: str = "production"  # APNs: sandbox or production gateway
    p256dh: str = ""  # Web Push subscription keys
    auth: str = ""


@dataclass(frozen=True)
class PushResult:
    delivery_id: int
    outcome: Outcome
    provider_message_id: str = ""
    error_code: str = ""  # the provider's own code, e.g. UNREGISTERED, BadDeviceToken, 410
    error: str = ""
    retry_after: float | None = None


class ProviderAuthError(Exception):
    """Credentials refused (401/403): the send is paused instead of burning the audience."""


class ProviderConfigError(Exception):
    """No or unusable configuration for this provider / application id."""


class PushBackend:
    def send_batch(self, messages: list[PushMessage]) -> list[PushResult]:
        """Send messages of one kind and application id; one result per message, same order."""
        raise NotImplementedError

    def send_stream(self, messages: list[PushMessage]) -> Iterator[list[PushResult]]:
        """Send like ``send_batch``, yielding results as they arrive: each slice holds those
        that came in since the last, and every message's result comes once, in some slice. The
        caller records a slice while the rest are still in flight."""
        yield self.send_batch(messages)

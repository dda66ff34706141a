"""What the delivery pipeline hands a push provider, and what it gets back.

A backend is chosen in settings like Django's EMAIL_BACKEND (``PUSH_BACKEND``) and sends one
batch (at most 500 messages, one provider kind and application id) per call. It reports a
result per message; it raises only for errors that concern the whole batch."""

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cached_property

MAX_BATCH_SIZE = 500  # FCM send_each refuses more; APNs and Web Push use the same unit of work


class Outcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # temporary (429, 5xx, timeout): try again after retry_after seconds
    FAILED = "failed"  # permanent for this message (e.g. payload rejected); device stays active
    DEAD_TOKEN = "dead_token"  # the token will never work again: deactivate the device


SILENT = "silent"  # a Presentation's kind: data for the app, nothing shown


@dataclass(frozen=True)
class Action:
    """A button under the notification; ``url`` is opened (a deep link) when it is tapped."""

    id: str
    title: str
    url: str = ""


@dataclass(frozen=True)
class Presentation:
    """How a message shows: the same for every message of a template, so a send builds it once
    and its messages share it."""

    kind: str = "alert"  # "alert" | "silent"
    badge: int | None = None
    badge_increment: bool = False  # add ``badge`` to the count the app keeps (it does the sum)
    sound: str = ""  # "default", a sound the app bundles, or "" for none
    thread_id: str = ""  # APNs thread-id
    android_channel_id: str = ""
    interruption_level: str = ""  # APNs: passive, active, time-sensitive, critical
    relevance_score: float | None = None
    actions: tuple[Action, ...] = ()
    category: str = ""  # APNs category the app registered for ``actions``

    @property
    def silent(self) -> bool:
        return self.kind == SILENT

    # What each provider's payload takes from the presentation, built once per send rather
    # than once per message (a frozen dataclass still keeps cached_property's values).
    @cached_property
    def apns_aps(self) -> dict:
        """The ``aps`` keys of an alert, beyond its alert, mutable-content and a set badge."""
        aps: dict = {}
        for key, value in (("sound", self.sound), ("thread-id", self.thread_id),
                           ("category", self.category),
                           ("interruption-level", self.interruption_level)):
            if value:
                aps[key] = value
        if self.relevance_score is not None:
            aps["relevance-score"] = self.relevance_score
        return aps

    @cached_property
    def apns_custom(self) -> dict:
        """Our keys beside ``aps`` for the app: its buttons' links, a badge to add."""
        custom: dict = {}
        if self.actions:
            custom["jh_actions"] = [asdict(action) for action in self.actions]
        if self.badge is not None and self.badge_increment:
            custom["jh_badge_increment"] = self.badge
        return custom

    @cached_property
    def webpush_extras(self) -> dict:
        """Web Push keys for the service worker: buttons (as showNotification takes them, with
        their links), the app badge (Badging API), whether the notification stays on screen."""
        extras: dict = {}
        if self.actions:
            extras["actions"] = [{"action": a.id, "title": a.title, "url": a.url}
                                 for a in self.actions]
        if self.badge is not None:
            extras["badge_count"] = self.badge
            extras["badge_increment"] = self.badge_increment
        if self.interruption_level in ("time-sensitive", "critical"):
            extras["require_interaction"] = True
        if self.sound == "" and self.interruption_level == "passive":
            extras["silent"] = True
        return extras

    @cached_property
    def data_extras(self) -> dict[str, str]:
        """The same keys as FCM data values (strings), for the app to render."""
        return {key: value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                for key, value in self.apns_custom.items()}


ALERT = Presentation()


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
    presentation: Presentation = ALERT


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

import re
from datetime import time

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from audiences.models import BUCKET_COUNT, Customer, validate_time_zone
from journeyhub.json_fields import StoredJSONField


class Device(models.Model):
    """What we know of a push endpoint beyond django-push-notifications' row: its owner (exactly
    one customer), where it runs and whether it may be notified. Exactly one of ``apns``, ``fcm``
    and ``webpush`` is set."""

    class Kind(models.TextChoices):
        APNS = "apns", "APNs"
        FCM = "fcm", "FCM"
        WEBPUSH = "webpush", "Web Push"

    class Platform(models.TextChoices):
        IOS = "ios", "iOS"
        ANDROID = "android", "Android"
        WEB = "web", "Web"

    class Environment(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox"
        PRODUCTION = "production", "Production"

    class Permission(models.TextChoices):
        GRANTED = "granted", "Granted"
        DENIED = "denied", "Denied"
        PROVISIONAL = "provisional", "Provisional"
        NOT_DETERMINED = "not_determined", "Not determined"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="devices")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    platform = models.CharField(max_length=10, choices=Platform.choices)
    apns = models.OneToOneField(
        "push_notifications.APNSDevice", null=True, blank=True, on_delete=models.CASCADE,
        related_name="journey_device",
    )
    fcm = models.OneToOneField(
        "push_notifications.GCMDevice", null=True, blank=True, on_delete=models.CASCADE,
        related_name="journey_device",
    )
    webpush = models.OneToOneField(
        "push_notifications.WebPushDevice", null=True, blank=True, on_delete=models.CASCADE,
        related_name="journey_device",
    )
    app_version = models.CharField(max_length=50, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    time_zone = models.CharField(max_length=64, blank=True, validators=[validate_time_zone])
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.PRODUCTION
    )
    permission = models.CharField(
        max_length=15, choices=Permission.choices, default=Permission.GRANTED
    )
    is_active = models.BooleanField(default=True)
    is_test = models.BooleanField(  # db_default: the bulk imports insert devices in SQL
        default=False, db_default=False,
        help_text="A team member's device: journey test runs can send to it.",
    )
    deactivated_reason = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["customer", "kind", "is_active"])]
        constraints = [
            models.CheckConstraint(
                name="device_exactly_one_provider_row",
                condition=(
                    Q(kind="apns", apns__isnull=False, fcm__isnull=True, webpush__isnull=True)
                    | Q(kind="fcm", apns__isnull=True, fcm__isnull=False, webpush__isnull=True)
                    | Q(kind="webpush", apns__isnull=True, fcm__isnull=True, webpush__isnull=False)
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_platform_display()} #{self.pk}"

    @property
    def provider_device(self):
        return getattr(self, self.kind)

    @property
    def token(self) -> str:
        return self.provider_device.registration_id

    @property
    def can_receive(self) -> bool:
        return self.is_active and self.permission != self.Permission.DENIED


ACTION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MAX_ACTIONS = 3  # what Android shows; iOS and browsers show at least as many
ACTION_TITLE_MAX = 40


class Template(models.Model):
    """A push message. Title, body, image, URL and data values are Django templates rendered
    over a safe context (see notifications.rendering)."""

    class Kind(models.TextChoices):
        ALERT = "alert", "Alert: a notification the customer sees"
        SILENT = "silent", "Silent: data for the app, nothing shown"

    class Priority(models.TextChoices):
        NORMAL = "normal", "Normal"
        HIGH = "high", "High (time-sensitive)"

    class BadgeMode(models.TextChoices):
        SET = "set", "Set the app icon's badge to the number"
        INCREMENT = "increment", "Add the number to the badge (the app adds it)"

    class InterruptionLevel(models.TextChoices):
        PASSIVE = "passive", "Passive: no sound, no wake"
        ACTIVE = "active", "Active (the default)"
        TIME_SENSITIVE = "time-sensitive", "Time sensitive: breaks through Focus"
        CRITICAL = "critical", "Critical: needs Apple's entitlement"

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ALERT)
    title = models.CharField(max_length=200, blank=True)
    body = models.TextField(blank=True)
    image_url = models.CharField(max_length=500, blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="Deep link or web URL.")
    data = StoredJSONField(default=dict, blank=True, help_text="Custom key/value data.")
    topic = models.ForeignKey(
        "audiences.Topic", null=True, blank=True, on_delete=models.PROTECT,
        help_text="Consent topic: customers who opted out of it are skipped.",
    )
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    ttl_seconds = models.PositiveIntegerField(
        default=24 * 3600, help_text="How long providers keep trying to reach an offline device."
    )
    collapse_key = models.CharField(max_length=64, blank=True)
    strict = models.BooleanField(
        default=False,
        help_text="A variable with no value (and no |default) skips that customer's message "
                  "with render_error instead of sending it with a gap.",
    )
    badge_mode = models.CharField(max_length=10, choices=BadgeMode.choices, blank=True)
    badge = models.PositiveIntegerField(null=True, blank=True, help_text="With a badge mode.")
    sound = models.CharField(
        max_length=100, blank=True,
        help_text='"default", the name of a sound the app bundles, or blank for none.',
    )
    thread_id = models.CharField(
        max_length=64, blank=True, help_text="Groups notifications (APNs thread-id).")
    android_channel_id = models.CharField(
        max_length=100, blank=True, help_text="The Android notification channel the app made.")
    interruption_level = models.CharField(
        max_length=20, choices=InterruptionLevel.choices, blank=True, help_text="iOS 15+.")
    relevance_score = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="0 to 1: which notification of a group iOS shows first.",
    )
    actions = StoredJSONField(
        default=list, blank=True,
        help_text=f'Up to {MAX_ACTIONS} buttons: [{{"id": "track", "title": "Track order", '
                  f'"url": "app://orders"}}]',
    )
    apns_category = models.CharField(
        max_length=64, blank=True,
        help_text="The APNs category the app registered for these buttons; default "
                  "jh.<id>.<id> from the action ids.",
    )
    # The message of one API send, posted inline rather than named: kept for the send's history,
    # left out of the template lists.
    inline = models.BooleanField(default=False, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = self.kind_problems()
        if errors:
            raise ValidationError(errors)

    def kind_problems(self) -> dict[str, str]:
        """{field: problem} for fields that do not fit the template's kind, or each other."""
        problems = {}
        if self.kind == self.Kind.SILENT:
            shown = [name for name in ("title", "body", "image_url", "sound")
                     if getattr(self, name)]
            shown += ["actions"] if self.actions else []
            shown += ["badge_mode"] if self.badge_mode else []
            for name in shown:
                problems[name] = "A silent push shows nothing: leave this empty."
            if not self.data:
                problems["data"] = "A silent push carries data: give at least one key."
        elif not (self.title or "").strip() and not (self.body or "").strip():
            problems["body"] = "An alert shows a title or a body: give at least one."
        if bool(self.badge_mode) != (self.badge is not None):
            problems["badge"] = "Give a badge mode and a number, or neither."
        if (actions := self.action_problem()) is not None:
            problems["actions"] = actions
        return problems

    def action_problem(self) -> str | None:
        actions = self.actions or []
        example = ' e.g. [{"id": "track", "title": "Track order", "url": "app://orders"}]'
        if not isinstance(actions, list) or len(actions) > MAX_ACTIONS:
            return f"A list of at most {MAX_ACTIONS} actions,{example}."
        for index, action in enumerate(actions, 1):
            if not isinstance(action, dict) or set(action) - {"id", "title", "url"}:
                return f"Action {index}: an object with id, title and url,{example}."
            if not ACTION_ID_RE.match(str(action.get("id", ""))):
                return f"Action {index}: id is 1 to 32 letters, digits, - or _."
            title = action.get("title")
            if not isinstance(title, str) or not 0 < len(title) <= ACTION_TITLE_MAX:
                return f"Action {index}: title is text of 1 to {ACTION_TITLE_MAX} characters."
            if not isinstance(action.get("url", ""), str) or len(action.get("url", "")) > 500:
                return f"Action {index}: url is text of at most 500 characters."
        if len({action["id"] for action in actions}) != len(actions):
            return "Each action needs its own id."
        return None

    @property
    def category(self) -> str:
        """The APNs category of the template's buttons (the app registers it)."""
        if self.apns_category or not self.actions:
            return self.apns_category
        return "jh." + ".".join(action["id"] for action in self.actions)


class TemplateTranslation(models.Model):
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="translations")
    locale = models.CharField(max_length=35, help_text="e.g. pt or pt-BR")
    title = models.CharField(max_length=200)
    body = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["template", "locale"], name="translation_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.template} [{self.locale}]"


class DeliverySettings(models.Model):
    """Global delivery controls, one row (pk=1), edited in the admin."""

    frequency_cap = models.PositiveIntegerField(
        default=3, help_text="Most non-transactional pushes a customer gets per window; 0 = off."
    )
    frequency_window_hours = models.PositiveIntegerField(default=24)
    quiet_hours_start = models.TimeField(default=time(21, 0), help_text="Customer's local time.")
    quiet_hours_end = models.TimeField(default=time(8, 0), help_text="Customer's local time.")
    default_time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone],
        help_text="For quiet hours and local-time sends when neither the device nor the "
                  "customer has a time zone.",
    )
    control_group_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=0,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="Customers who get no marketing push at all, campaign or not, to measure the "
                  "overall lift (0-100). Transactional sends still reach them.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "delivery settings"

    def __str__(self) -> str:
        return "Delivery settings"

    @classmethod
    def load(cls) -> "DeliverySettings":
        return cls.objects.get_or_create(pk=1)[0]

    def control_slots(self) -> int:
        """Customers whose bucket is below this are the global control group."""
        return int(round(float(self.control_group_percent or 0) * BUCKET_COUNT / 100))


class FrequencyCap(models.Model):
    """A cap on top of the global one, for the pushes of one consent topic or for the pushes of
    one kind of campaign (ad-hoc sends are a kind of their own)."""

    topic = models.ForeignKey(
        "audiences.Topic", null=True, blank=True, on_delete=models.CASCADE,
        help_text="Counts only pushes whose template has this topic.",
    )
    campaign_kind = models.CharField(
        max_length=20, blank=True, choices=[("broadcast", "Broadcast"),
                                            ("recurring", "Recurring"), ("journey", "Journey"),
                                            ("adhoc", "Ad-hoc sends (not from a campaign)")],
        help_text="Counts only pushes of this kind of campaign.",
    )
    cap = models.PositiveIntegerField(help_text="Most pushes a customer gets per window.")
    window_hours = models.PositiveIntegerField(default=24)

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="frequency_cap_one_scope",
                condition=(Q(topic__isnull=False, campaign_kind="")
                           | Q(topic__isnull=True) & ~Q(campaign_kind="")),
            ),
        ]

    def __str__(self) -> str:
        scope = f"topic {self.topic}" if self.topic_id else f"{self.campaign_kind} pushes"
        return f"At most {self.cap} {scope} per {self.window_hours} h"

    def clean(self) -> None:
        if bool(self.topic_id) == bool(self.campaign_kind):
            raise ValidationError("Choose either a topic or a campaign kind, not both.")


class Throttle(models.Model):
    """The next moment a throttled stream of messages (a campaign's, or an ad-hoc send's) may
    send again: every batch reserves its share of the rate here before it goes out."""

    key = models.CharField(max_length=100, unique=True)
    next_free_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.key} free at {self.next_free_at:%H:%M:%S}"


class LocalTimePassed(models.TextChoices):
    NEXT_DAY = "next_day", "Send at that time the next day"
    SKIP = "skip", "Skip them"


class Send(models.Model):
    """One template sent to one audience, with its controls."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        FANNING_OUT = "fanning_out", "Building the audience"
        SENDING = "sending", "Sending"
        PAUSED = "paused", "Paused"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    template = models.ForeignKey(Template, on_delete=models.PROTECT, related_name="sends")
    segment = models.ForeignKey(
        "audiences.Segment", null=True, blank=True, on_delete=models.PROTECT
    )
    customer_ids = models.JSONField(null=True, blank=True, help_text="Explicit audience.")
    trigger_event = models.ForeignKey(
        "audiences.Event", null=True, blank=True, on_delete=models.SET_NULL,
        help_text="The event whose properties personalise the message.",
    )
    kinds = models.JSONField(
        default=list, blank=True,
        help_text="Only these providers (apns, fcm, webpush); empty means every device.",
    )
    throttle_per_minute = models.PositiveIntegerField(null=True, blank=True)
    throttle_key = models.CharField(
        max_length=100, blank=True,
        help_text="Sends sharing a key share one throttle (a campaign's sends); blank: its own.",
    )
    campaign_kind = models.CharField(
        max_length=20, blank=True, help_text="The kind of campaign that made it; blank: ad-hoc.",
    )
    respect_quiet_hours = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(
        null=True, blank=True, help_text="Its own quiet window; empty: the global one.")
    quiet_hours_end = models.TimeField(null=True, blank=True)
    local_time = models.TimeField(
        null=True, blank=True,
        help_text="Deliver at this time of day in each customer's time zone; empty: at once.",
    )
    local_time_passed = models.CharField(
        max_length=10, choices=LocalTimePassed.choices, default=LocalTimePassed.NEXT_DAY,
        help_text="Customers whose local time already passed today.",
    )
    cap_exempt = models.BooleanField(
        default=False, help_text="Transactional: not counted against, nor stopped by, the cap."
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Never sent after this.")
    test_devices_only = models.BooleanField(
        default=False, db_default=False,
        help_text="Goes only to devices marked as test devices (a test run).",
    )
    ttl_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides the template's TTL when set."
    )
    data = StoredJSONField(
        default=dict, blank=True, help_text="Posted with an API send: the template's {{ data }}."
    )
    source = models.CharField(max_length=100, blank=True, help_text="e.g. campaign:3/step:7")
    # An API send's Idempotency-Key (unique per API key) and a digest of its request body: the
    # same request again answers this send, another body under the key is refused.
    api_key = models.ForeignKey(
        "journeyhub.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_digest = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status"]), models.Index(fields=["source"]),
            # The rollup refresh finds deliveries whose status may have moved through the
            # sends that fanned out or finished since its last run (analytics.rollups).
            models.Index(fields=["started_at"], name="send_started_at"),
            models.Index(fields=["finished_at"], name="send_finished_at"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "idempotency_key"], name="send_idempotency_key_per_api_key",
                condition=~Q(idempotency_key=""),
            ),
        ]

    def __str__(self) -> str:
        return f"Send #{self.pk}: {self.template}"

    def is_expired(self, now=None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())

    def throttle_stream(self) -> str:
        return self.throttle_key or f"send:{self.pk}"


class Delivery(models.Model):
    """One (send, customer, device): sent, failed, or skipped with a reason. A customer who
    was targeted but cannot be sent to has one row with no device."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    class Reason(models.TextChoices):
        FREQUENCY_CAPPED = "frequency_capped", "Frequency capped"
        CONTROL_GROUP = "control_group", "In the global control group"
        QUIET_HOURS_DEFERRED = "quiet_hours_deferred", "Deferred to the end of quiet hours"
        LOCAL_TIME_SCHEDULED = "local_time_scheduled", "Waiting for its local delivery time"
        LOCAL_TIME_PASSED = "local_time_passed", "Its local delivery time had passed"
        OPTED_OUT = "opted_out", "Opted out"
        NO_ACTIVE_DEVICE = "no_active_device", "No active device"
        EXPIRED = "expired", "Expired before sending"
        RENDER_ERROR = "render_error", "Template failed to render"
        DEAD_TOKEN = "dead_token", "Token no longer valid"
        PROVIDER_REJECTED = "provider_rejected", "Refused by the provider"
        RETRIES_EXHAUSTED = "retries_exhausted", "Temporary errors, gave up"
        SEND_CANCELLED = "send_cancelled", "Send cancelled"
        CUSTOMER_ERASED = "customer_erased", "Customer erased before sending"

    id = models.BigAutoField(primary_key=True)
    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="deliveries")
    # Null once the customer was erased (or, for a row a merge could not move, merged): the
    # row still counts in reports.
    customer = models.ForeignKey(
        "audiences.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    device = models.ForeignKey(
        Device, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    # The audiences.CustomerErasure that removed the customer: the rollups count an erased
    # customer once per send by it. A plain id, like the rollups' own: no index or constraint
    # to build on a big log.
    erasure_id = models.BigIntegerField(null=True, blank=True, editable=False)
    kind = models.CharField(max_length=10, choices=Device.Kind.choices, blank=True)
    application_id = models.CharField(max_length=64, blank=True)
    batch_no = models.IntegerField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=30, choices=Reason.choices, blank=True)
    error = models.CharField(max_length=500, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_message_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    # The id of the action button the customer tapped to open it; blank: the notification.
    opened_action = models.CharField(max_length=32, blank=True, db_default="")

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["send", "batch_no", "status"]),
            models.Index(fields=["customer", "sent_at"]),  # frequency cap look-back
            models.Index(fields=["send", "status", "reason"]),
            # Late receipts and opens for the rollup refresh; partial, so the fan-out's inserts
            # (NULL there) never touch them.
            models.Index(fields=["received_at"], name="delivery_received_at",
                         condition=Q(received_at__isnull=False)),
            models.Index(fields=["opened_at"], name="delivery_opened_at",
                         condition=Q(opened_at__isnull=False)),
            # Also, on PostgreSQL only, a BRIN index on created_at (migration 0006): a rollup
            # rebuilds one day without reading the whole log.
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["send", "customer", "device"], name="delivery_once_per_device",
                condition=Q(device__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["send", "customer"], name="delivery_once_per_skipped_customer",
                condition=Q(device__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Delivery #{self.pk} ({self.status})"


class DeliveryBatch(models.Model):
    """At most MAX_BATCH_SIZE deliveries of one send, provider kind and application id: the
    unit one Celery task claims and sends."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        DONE = "done", "Done"

    send = models.ForeignKey(Send, on_delete=models.CASCADE, related_name="batches")
    number = models.IntegerField()
    kind = models.CharField(max_length=10, choices=Device.Kind.choices)
    application_id = models.CharField(max_length=64, blank=True)
    size = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    not_before = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The fencing number: each claim raises it, and every write of results names the one it
    # holds, so a worker that lost its claim cannot record anything (notifications.sending.batches).
    fence = models.PositiveBigIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "delivery batches"
        constraints = [
            models.UniqueConstraint(fields=["send", "number"], name="batch_number_unique"),
        ]
        indexes = [
            models.Index(fields=["status", "not_before"]),
            # The rollup refresh re-reads the deliveries of batches sent since its last run.
            models.Index(fields=["claimed_at"], name="batch_claimed_at"),
        ]

    def __str__(self) -> str:
        return f"Batch {self.number} of send #{self.send_id}"


class ProviderOutage(models.Model):
    """A provider (kind and application id) answering only temporary errors: every batch for it
    waits until ``retry_at`` instead of spending its messages' attempts. Deleted as soon as the
    provider accepts messages again."""

    kind = models.CharField(max_length=10, choices=Device.Kind.choices)
    application_id = models.CharField(max_length=64, blank=True)  # blank: the default app
    retry_at = models.DateTimeField()
    failures = models.PositiveIntegerField(default=1, help_text="Consecutive failed tries.")
    error = models.CharField(max_length=500, blank=True)
    started_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "application_id"], name="outage_per_provider"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.application_id} unavailable"


class DemoInbox(models.Model):
    """A Web Push subscription that this server itself receives (demo mode): it holds the
    browser's side of the keys, so the sink can decrypt what the real Web Push code sent."""

    device = models.OneToOneField(Device, on_delete=models.CASCADE, related_name="demo_inbox")
    key = models.CharField(max_length=32, unique=True)
    private_key = models.CharField(max_length=64)
    auth_secret = models.CharField(max_length=32)

    class Meta:
        verbose_name = "demo inbox"

    def __str__(self) -> str:
        return f"Demo inbox of device #{self.device_id}"


class DemoReceivedPush(models.Model):
    """A notification received and decrypted by the demo sink."""

    inbox = models.ForeignKey(DemoInbox, on_delete=models.CASCADE, related_name="received")
    received_at = models.DateTimeField(default=timezone.now)
    title = models.CharField(max_length=500, blank=True)
    body = models.TextField(blank=True)
    payload = models.JSONField(default=dict)
    ttl = models.CharField(max_length=20, blank=True)
    # The notification's tag: a push with the tag of an earlier one replaces it, as a
    # browser's notification tray does, so a message sent twice shows once.
    tag = models.CharField(max_length=64, blank=True)
    urgency = models.CharField(max_length=20, blank=True)

    class Meta:
        verbose_name = "received push (demo)"
        verbose_name_plural = "received pushes (demo)"
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return self.title or f"Push #{self.pk}"

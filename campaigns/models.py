"""Campaigns, their steps, the customers enrolled in them, and what they earned.

Every campaign runs the same way: customers are enrolled (a whole segment at once for a
broadcast or a recurring run; one at a time, on an event, a stage or a segment entry, for a
journey) and the engine walks each enrollment through the campaign's steps."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from audiences.models import BUCKET_COUNT, Stage
from journeyhub.json_fields import StoredJSONField
from notifications.models import LocalTimePassed

# Holdout and variant slots are permutations of the customer's stable bucket, salted by the
# campaign (or step), so that a campaign's holdout is not the same customers as the global
# control group (notifications.DeliverySettings: the lowest buckets) nor as another campaign's
# holdout. Both multipliers are prime to BUCKET_COUNT.
HOLDOUT_MULTIPLIER = 7919
VARIANT_MULTIPLIER = 2749
SALT_MULTIPLIER = 104729


def holdout_slot(bucket: int, campaign_id: int) -> int:
    """0..9999, stable per (customer, campaign). Mirrored in SQL by engine.enrollments.group_sql."""
    return (bucket * HOLDOUT_MULTIPLIER + campaign_id * SALT_MULTIPLIER) % BUCKET_COUNT


def variant_slot(bucket: int, step_id: int) -> int:
    """0..9999, stable per (customer, step): the customer always gets the same A/B variant."""
    return (bucket * VARIANT_MULTIPLIER + step_id * SALT_MULTIPLIER) % BUCKET_COUNT


def percent_to_slots(percent) -> int:
    """A percentage (0-100, two decimals) as a number of slots out of BUCKET_COUNT."""
    return int(round(float(percent or 0) * BUCKET_COUNT / 100))


class Campaign(models.Model):
    class Kind(models.TextChoices):
        BROADCAST = "broadcast", "Broadcast (once, now or at a set time)"
        RECURRING = "recurring", "Recurring (on a schedule)"
        JOURNEY = "journey", "Journey (triggered per customer)"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        ARCHIVED = "archived", "Archived"

    class Trigger(models.TextChoices):
        EVENT = "event", "An event is tracked"
        STAGE = "stage", "The customer enters a lifecycle stage"
        SEGMENT = "segment", "The customer enters a segment"

    class Reentry(models.TextChoices):
        ONCE = "once", "Once per customer"
        ALWAYS = "always", "Every time (one enrollment at a time)"
        COOLDOWN = "cooldown", "Again after a cooldown"

    name = models.CharField(max_length=150, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.BROADCAST)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    stage = models.CharField(
        max_length=20, choices=Stage.choices, blank=True,
        help_text="The lifecycle stage this campaign works on (for reports).",
    )
    segment = models.ForeignKey(
        "audiences.Segment", null=True, blank=True, on_delete=models.PROTECT,
        related_name="campaigns",
        help_text="Broadcast and recurring: the audience. Journey: only customers in this "
                  "segment may enter (optional).",
    )

    # Broadcast and recurring schedules (kept in step with django-celery-beat rows).
    send_at = models.DateTimeField(
        null=True, blank=True, help_text="Broadcast: when to send; empty means at launch."
    )
    crontab = models.CharField(
        max_length=100, blank=True,
        help_text='Recurring: "minute hour day-of-month month day-of-week", e.g. "0 10 * * 1" '
                  "for Mondays at 10:00.",
    )
    crontab_time_zone = models.CharField(max_length=64, default="UTC")
    beat_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="campaign", editable=False,
        help_text="The beat row that launches this campaign's runs.",
    )

    # Journey entry.
    trigger = models.CharField(max_length=20, choices=Trigger.choices, blank=True)
    trigger_event_name = models.CharField(max_length=100, blank=True)
    trigger_event_filter = StoredJSONField(
        default=dict, blank=True,
        help_text='Event properties that must match, e.g. {"category": "pizza"}.',
    )
    trigger_stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)
    trigger_segment = models.ForeignKey(
        "audiences.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reentry = models.CharField(max_length=20, choices=Reentry.choices, default=Reentry.ONCE)
    reentry_cooldown = models.DurationField(null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    max_enrollments = models.PositiveIntegerField(null=True, blank=True)

    # Goal: reaching it exits the journey and records a conversion.
    goal_event_name = models.CharField(max_length=100, blank=True)
    goal_event_filter = StoredJSONField(default=dict, blank=True)
    goal_window = models.DurationField(
        default=timedelta(days=7), help_text="How long after entry a goal event counts."
    )
    goal_revenue_property = models.CharField(
        max_length=100, blank=True, help_text='The event property holding revenue, e.g. "total".'
    )

    # Delivery controls handed to every send step.
    holdout_percent = models.DecimalField(
        max_digits=5, decimal_places=2, default=0,
        help_text="Enrolled customers who get no message, to measure lift (0-100).",
    )
    transactional = models.BooleanField(
        default=False,
        help_text="Exempt from the frequency caps and the global control group (order updates).",
    )
    throttle_per_minute = models.PositiveIntegerField(null=True, blank=True)
    respect_quiet_hours = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(
        null=True, blank=True,
        help_text="Its own quiet window (both ends); empty: the global one from Delivery "
                  "settings. Untick 'respect quiet hours' for none.",
    )
    quiet_hours_end = models.TimeField(null=True, blank=True)
    local_send_time = models.TimeField(
        null=True, blank=True,
        help_text="Broadcast and recurring: deliver at this time in each customer's own time "
                  "zone; empty: at once.",
    )
    local_time_passed = models.CharField(
        max_length=10, choices=LocalTimePassed.choices, default=LocalTimePassed.NEXT_DAY,
        help_text="Customers whose local send time already passed when the run starts.",
    )
    message_expires_at = models.DateTimeField(
        null=True, blank=True, help_text="Limited-time offers: no message is sent after this."
    )

    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "kind", "trigger"])]

    def __str__(self) -> str:
        return self.name

    def is_live(self, now=None) -> bool:
        """Running and inside its start/end dates: may enroll customers."""
        now = now or timezone.now()
        return (
            self.status == self.Status.RUNNING
            and (self.starts_at is None or self.starts_at <= now)
            and (self.ends_at is None or now < self.ends_at)
        )

    def first_step(self) -> "Step | None":
        return self.steps.order_by("position", "pk").first()

    def holdout_slots(self) -> int:
        return percent_to_slots(self.holdout_percent)

    def clean(self) -> None:
        errors = {}
        if self.kind in (self.Kind.BROADCAST, self.Kind.RECURRING) and not self.segment_id:
            errors["segment"] = "A broadcast or recurring campaign needs a segment to send to."
        if self.kind == self.Kind.RECURRING and not self.crontab:
            errors["crontab"] = "A recurring campaign needs a schedule."
        if self.kind == self.Kind.JOURNEY:
            errors.update(self._journey_errors())
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The end must be after the start."
        for field in ("holdout_percent",):
            value = getattr(self, field)
            if value is not None and not 0 <= value <= 100:
                errors[field] = "A percentage between 0 and 100."
        if (self.quiet_hours_start is None) != (self.quiet_hours_end is None):
            errors["quiet_hours_end"] = ("An own quiet window needs both its start and its end "
                                         "(leave both empty for the global window).")
        if self.local_send_time and self.kind == self.Kind.JOURNEY:
            errors["local_send_time"] = ("Only broadcast and recurring campaigns send at a local "
                                         "time; a journey uses a 'wait until a local time' step.")
        if self.goal_event_filter and not self.goal_event_name:
            errors["goal_event_name"] = "A goal filter needs the goal event's name."
        for field in ("trigger_event_filter", "goal_event_filter"):
            if not isinstance(getattr(self, field), dict):
                errors[field] = 'Give an object of property values, e.g. {"category": "pizza"}.'
        if errors:
            raise ValidationError(errors)

    def _journey_errors(self) -> dict[str, str]:
        errors = {}
        if not self.trigger:
            errors["trigger"] = "A journey needs an entry trigger."
        elif self.trigger == self.Trigger.EVENT and not self.trigger_event_name:
            errors["trigger_event_name"] = "An event trigger needs the event's name."
        elif self.trigger == self.Trigger.STAGE and not self.trigger_stage:
            errors["trigger_stage"] = "A stage trigger needs the stage."
        elif self.trigger == self.Trigger.SEGMENT and not self.trigger_segment_id:
            errors["trigger_segment"] = "A segment trigger needs the segment."
        if self.reentry == self.Reentry.COOLDOWN and not self.reentry_cooldown:
            errors["reentry_cooldown"] = "Re-entry after a cooldown needs the cooldown."
        return errors


class Step(models.Model):
    class Kind(models.TextChoices):
        SEND = "send", "Send a message"
        WAIT = "wait", "Wait for a duration"
        WAIT_UNTIL = "wait_until", "Wait until a local time"
        WAIT_EVENT = "wait_event", "Wait for an event (or time out)"
        SPLIT_SEGMENT = "split_segment", "Split: in a segment?"
        SPLIT_RANDOM = "split_random", "Split: random percent"
        SET_ATTRIBUTE = "set_attribute", "Set a customer attribute"
        SET_STAGE = "set_stage", "Move to a lifecycle stage"
        EXIT = "exit", "Exit"

    # Kinds whose "else" link is a second branch.
    BRANCHING = {Kind.WAIT_EVENT, Kind.SPLIT_SEGMENT, Kind.SPLIT_RANDOM}
    # Kinds that make time pass: a loop must go through one of them.
    WAITING = {Kind.WAIT, Kind.WAIT_UNTIL, Kind.WAIT_EVENT}

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(default=0)
    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    next_step = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Where to go next (yes / happened). Empty: the next step in order.",
    )
    else_step = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Branches only: where to go on no / timed out. Empty: exit.",
    )

    template = models.ForeignKey(
        "notifications.Template", null=True, blank=True, on_delete=models.PROTECT,
        related_name="+",
        help_text="Send: the message (or add A/B variants below).",
    )
    duration = models.DurationField(
        null=True, blank=True, help_text="Wait: how long. Wait for an event: the timeout."
    )
    local_time = models.TimeField(
        null=True, blank=True, help_text="Wait until: the time in the customer's time zone."
    )
    weekdays = models.JSONField(
        default=list, blank=True,
        help_text="Wait until: allowed weekdays, 0=Monday ... 6=Sunday; empty means any day.",
    )
    event_name = models.CharField(max_length=100, blank=True)
    event_filter = StoredJSONField(default=dict, blank=True)
    segment = models.ForeignKey(
        "audiences.Segment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    percent = models.DecimalField(
        max_digits=5, decimal_places=2, null=True, blank=True,
        help_text="Random split: the percentage that takes the 'next' branch.",
    )
    attribute_key = models.CharField(max_length=100, blank=True)
    attribute_value = StoredJSONField(null=True, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, blank=True)

    class Meta:
        ordering = ["position", "pk"]
        indexes = [models.Index(fields=["campaign", "position"])]

    def __str__(self) -> str:
        label = self.name or self.get_kind_display()
        return f"{self.position}. {label}"


class Variant(models.Model):
    """An A/B variant of a send step: customers are split by weight, stably."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=20, default="A")
    template = models.ForeignKey(
        "notifications.Template", on_delete=models.PROTECT, related_name="+"
    )
    weight = models.PositiveIntegerField(default=50)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["step", "name"], name="variant_name_unique"),
        ]

    def __str__(self) -> str:
        return f"Variant {self.name}"


class Enrollment(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        EXITED = "exited", "Exited"

    class Group(models.TextChoices):
        TREATMENT = "treatment", "Gets messages"
        HOLDOUT = "holdout", "Campaign holdout"
        CONTROL = "control", "Global control group"

    class ExitReason(models.TextChoices):
        COMPLETED = "completed", "Reached the end"
        EXIT_STEP = "exit_step", "Exit step"
        GOAL = "goal", "Reached the goal"
        CAMPAIGN_ENDED = "campaign_ended", "Campaign ended or archived"
        STEP_REMOVED = "step_removed", "Its step was removed"
        ERROR = "error", "A step failed for it (see the worker log)"
        MERGED = "merged", "The customer was merged into another one, already enrolled"
        ERASED = "erased", "The customer was erased"

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrollments")
    # Null once the customer was erased (the enrollment has exited): reports keep counting it.
    customer = models.ForeignKey(
        "audiences.Customer", null=True, blank=True, on_delete=models.CASCADE,
        related_name="enrollments",
    )
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="enrollments"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    group = models.CharField(max_length=10, choices=Group.choices, default=Group.TREATMENT)
    next_run_at = models.DateTimeField(null=True, blank=True)
    waiting_for = models.CharField(
        max_length=100, blank=True, help_text="The event a wait-for-event step expects."
    )
    trigger_event = models.ForeignKey(
        "audiences.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    entered_at = models.DateTimeField(default=timezone.now)
    exited_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=20, choices=ExitReason.choices, blank=True)

    class Meta:
        indexes = [
            # The tick: each running campaign's due active enrollments, oldest first; a
            # paused campaign's backlog is never walked past.
            models.Index(
                fields=["campaign", "next_run_at"], name="enrollment_due_by_campaign",
                condition=Q(state="active"),
            ),
            models.Index(fields=["customer", "state"]),
            models.Index(fields=["campaign", "state"]),
            models.Index(fields=["campaign", "customer", "entered_at"]),
            # Analytics rollups: the days customers entered and exited since a moment. The
            # exits' index is partial, so enrollments still going are not in it.
            models.Index(fields=["entered_at"], name="enrollment_entered_at"),
            models.Index(fields=["exited_at"], name="enrollment_exited_at",
                         condition=Q(exited_at__isnull=False)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer"], condition=Q(state="active"),
                name="enrollment_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.campaign_id} ({self.state})"


class StepSend(models.Model):
    """A send a step handed to the delivery engine (one per tick batch and variant)."""

    # A removed step leaves its sends to the campaign: reports keep counting what they sent.
    step = models.ForeignKey(
        Step, null=True, blank=True, on_delete=models.SET_NULL, related_name="sends"
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="step_sends")
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="sends"
    )
    send = models.OneToOneField(
        "notifications.Send", on_delete=models.CASCADE, related_name="step_send"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.send_id} from step {self.step_id}"


class Conversion(models.Model):
    """A goal reached by an enrolled customer, with revenue, attributed to the last delivery
    they got from this campaign (none for the holdout and control groups)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="conversions")
    enrollment = models.OneToOneField(
        Enrollment, on_delete=models.CASCADE, related_name="conversion"
    )
    customer = models.ForeignKey(  # null once the customer was erased, as for enrollments
        "audiences.Customer", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    group = models.CharField(max_length=10, choices=Enrollment.Group.choices)
    event = models.ForeignKey(
        "audiences.Event", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    delivery = models.ForeignKey(
        "notifications.Delivery", null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revenue = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    occurred_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["campaign", "occurred_at"]),
            models.Index(fields=["occurred_at"]),  # the analytics rollups' days
        ]

    def __str__(self) -> str:
        return f"Conversion of {self.customer_id} in {self.campaign_id}"

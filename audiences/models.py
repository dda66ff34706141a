import hashlib
import secrets
import zoneinfo
from functools import lru_cache
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.text import slugify

from journeyhub.json_fields import StoredJSONField

BUCKET_COUNT = 10_000  # holdouts and splits take ranges of 0..9999, i.e. steps of 0.01%
REFERRAL_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud safely


@lru_cache(maxsize=1)
def _time_zone_names() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


# The IANA names, as choices: the API schema lists them (TimeZoneEnum).
TIME_ZONE_CHOICES = [(name, name) for name in sorted(_time_zone_names())]


def validate_time_zone(value: str) -> None:
    if value not in _time_zone_names():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Lisbon).")


# API paths go on after a customer's id (/customers/{id}/token/), and servers decode %2F
# before routing: an id ending in "/token" would read as the token endpoint of another id.
EXTERNAL_ID_RESERVED_ENDINGS = ("/token", "/merge", "/export")
# /customers/batch/ is the batch endpoint, so no customer may be called "batch".
EXTERNAL_ID_RESERVED = ("batch",)


def external_id_problem(external_id: str) -> str | None:
    if external_id in EXTERNAL_ID_RESERVED:
        return f"{external_id!r} may not be an external id: /customers/{external_id}/ is an " \
               "endpoint of its own."
    if external_id.endswith(EXTERNAL_ID_RESERVED_ENDINGS):
        endings = ", ".join(EXTERNAL_ID_RESERVED_ENDINGS)
        return f"An external id may not end in {endings}: its API paths would name those."
    return None


def validate_external_id(value: str) -> None:
    if problem := external_id_problem(value):
        raise ValidationError(problem)


def customer_bucket(external_id: str) -> int:
    """Stable 0..9999 from the external id: the same customer lands in the same bucket forever,
    even if deleted and imported again."""
    digest = hashlib.sha256(external_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKET_COUNT


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_CODE_ALPHABET) for _ in range(10))


class Stage(models.TextChoices):
    AWARENESS = "awareness", "Awareness"
    ENGAGEMENT = "engagement", "Engagement"
    CONVERSION = "conversion", "Conversion"
    RETENTION = "retention", "Retention"
    ADVOCACY = "advocacy", "Advocacy"


class Customer(models.Model):
    external_id = models.CharField(max_length=255, unique=True,
                                   validators=[validate_external_id])
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    email = models.EmailField(blank=True)
    locale = models.CharField(max_length=35, default="en", help_text="BCP 47, e.g. en, pt-BR.")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    attributes = StoredJSONField(default=dict, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.AWARENESS)
    stage_changed_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    referral_code = models.CharField(max_length=16, unique=True, default=new_referral_code)
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals"
    )
    bucket = models.PositiveSmallIntegerField(editable=False)
    push_opt_out = models.BooleanField(
        default=False, help_text="Opted out of all push, whatever the topic."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["stage"]),
            models.Index(fields=["last_seen_at"]),
            models.Index(fields=["bucket"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(bucket__gte=0, bucket__lt=BUCKET_COUNT), name="customer_bucket_range"
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.external_id

    def save(self, *args, **kwargs):
        if self.bucket is None:
            self.bucket = customer_bucket(self.external_id)
        super().save(*args, **kwargs)

    @property
    def referral_link(self) -> str:
        """The customer's referral link: settings.REFERRAL_LINK with their code in it."""
        return settings.REFERRAL_LINK.replace("{code}", quote(self.referral_code, safe=""))

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class Event(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    name = models.CharField(max_length=100)
    properties = StoredJSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now)
    client_event_id = models.CharField(
        max_length=100, null=True, blank=True,
        help_text="The sender's id for this event: a retry with the same id is ignored.",
    )

    class Meta:
        indexes = [
            # Segment rules ("purchase at least 2 times in 30 days") and "last order_placed".
            models.Index(fields=["customer", "name", "occurred_at"]),
            models.Index(fields=["name", "occurred_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "client_event_id"],
                condition=Q(client_event_id__isnull=False),
                name="event_unique_client_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} @ {self.occurred_at:%Y-%m-%d %H:%M}"


class Topic(models.Model):
    key = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)

    def __str__(self) -> str:
        return self.name


class TopicOptOut(models.Model):
    """A customer does not want pushes of this topic. Absence means consent (opt-out model)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="topic_opt_outs")
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="opt_outs")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "topic"], name="topic_opt_out_unique"),
        ]
        indexes = [models.Index(fields=["topic", "customer"])]

    def __str__(self) -> str:
        return f"{self.customer_id} opted out of {self.topic_id}"


class StageRule(models.Model):
    class Kind(models.TextChoices):
        EVENT = "event", "An event is tracked"
        INACTIVITY = "inactivity", "No event for N days"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    event_name = models.CharField(max_length=100, blank=True)
    first_time_only = models.BooleanField(
        default=False, help_text="Only the customer's first event of this name moves them."
    )
    inactivity_days = models.PositiveIntegerField(null=True, blank=True)
    from_stages = models.JSONField(
        default=list, blank=True,
        help_text="Stages the rule moves customers out of; empty means any other stage.",
    )
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    priority = models.PositiveIntegerField(default=100, help_text="Lower runs first.")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["priority", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        if self.kind == self.Kind.EVENT and not self.event_name:
            errors["event_name"] = "An event rule needs the event name it reacts to."
        if self.kind == self.Kind.INACTIVITY and not self.inactivity_days:
            errors["inactivity_days"] = "An inactivity rule needs a number of days."
        valid = set(Stage.values)
        if not isinstance(self.from_stages, list) or not set(self.from_stages) <= valid:
            errors["from_stages"] = f"Give a list of stages out of: {', '.join(Stage.values)}."
        if errors:
            raise ValidationError(errors)

    def source_stages(self) -> list[str]:
        """The stages this rule may move a customer out of."""
        stages = self.from_stages or Stage.values
        return [stage for stage in stages if stage != self.to_stage]


class StageTransition(models.Model):
    # Null once the customer was erased: the move still counts in the journey reports.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="transitions"
    )
    from_stage = models.CharField(max_length=20, choices=Stage.choices)
    to_stage = models.CharField(max_length=20, choices=Stage.choices)
    at = models.DateTimeField(default=timezone.now)
    cause = models.CharField(max_length=255)
    rule = models.ForeignKey(StageRule, null=True, blank=True, on_delete=models.SET_NULL)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        indexes = [
            models.Index(fields=["customer", "at"]),
            models.Index(fields=["at"]),
        ]

    def __str__(self) -> str:
        return f"{self.from_stage} -> {self.to_stage}"


class Segment(models.Model):
    class Kind(models.TextChoices):
        DYNAMIC = "dynamic", "Dynamic (rules)"
        STATIC = "static", "Static (uploaded list)"

    name = models.CharField(max_length=100, unique=True)
    key = models.SlugField(
        max_length=50, unique=True,
        help_text="How the API, the send command and other segments' rules name this segment: "
                  "letters, digits, - and _. Renaming it breaks code that uses the old key.",
    )
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.DYNAMIC)
    rules = StoredJSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        if not self.key:  # code that names a segment only by its name gets a key from it
            self.key = self.key_from_name()
        super().save(*args, **kwargs)

    def key_from_name(self) -> str:
        max_length = self._meta.get_field("key").max_length
        return slugify(self.name)[:max_length].strip("-") or "segment"


class SegmentMember(models.Model):
    """Membership of a static segment."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="segment_member_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"


class CustomerMerge(models.Model):
    """An anonymous customer (an id the app made before login) merged into a known one. The
    anonymous row is gone; this record makes the same merge asked again answer the same, and
    tells an old token of the anonymous customer where it went."""

    anonymous_external_id = models.CharField(max_length=255, db_index=True)
    anonymous_customer_id = models.BigIntegerField(db_index=True)  # the deleted row's pk
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="merges")
    moved = models.JSONField(default=dict, help_text="How many rows of each kind moved.")
    merged_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.anonymous_external_id} merged into {self.customer_id}"


ERASURE_HASH_SALT = "journeyhub.customer-erasure"


class CustomerErasure(models.Model):
    """The record that a customer was erased: when, by whom, how many rows of each kind were
    removed or anonymised, and a keyed hash of their external id instead of the id itself."""

    external_id_hash = models.CharField(
        max_length=64, db_index=True, editable=False,
        help_text="HMAC-SHA256 of the external id, keyed by SECRET_KEY: it answers \"was this "
                  "id erased?\" for someone who has the id, and gives the id to no one.",
    )
    erased_by = models.CharField(max_length=200)
    erased_at = models.DateTimeField(default=timezone.now)
    removed = models.JSONField(default=dict, help_text="Rows removed or anonymised, by kind.")

    class Meta:
        indexes = [models.Index(fields=["erased_at"])]

    def __str__(self) -> str:
        return f"Erasure #{self.pk} at {self.erased_at:%Y-%m-%d %H:%M}"

    @staticmethod
    def hash_external_id(external_id: str) -> str:
        return salted_hmac(ERASURE_HASH_SALT, external_id, algorithm="sha256").hexdigest()

"""Shapes of the send endpoints. Validation only: the writes are notifications.send_requests."""

from rest_framework import serializers

from journeyhub.api_errors import IdentifierField, StrictFieldsMixin
from notifications.api.templates_serializers import ActionSerializer
from notifications.models import MAX_ACTIONS, Delivery, Device, LocalTimePassed, Send, Template
from notifications.send_requests import MAX_EXTERNAL_IDS

MAX_TTL_SECONDS = 28 * 24 * 3600  # what FCM and APNs keep at most
MAX_THROTTLE_PER_MINUTE = 1_000_000
DELIVERIES_PAGE_MAX = 1000


class InlineMessageSerializer(StrictFieldsMixin, serializers.Serializer):
    title = serializers.CharField(max_length=200, allow_blank=True, required=False, default="")
    body = serializers.CharField(allow_blank=True, required=False, default="")
    image_url = serializers.CharField(max_length=500, allow_blank=True, required=False)
    url = serializers.CharField(max_length=500, allow_blank=True, required=False,
                                help_text="Deep link or web URL opened on tap.")
    data = serializers.DictField(required=False, help_text="Custom key/value data.")
    priority = serializers.ChoiceField(choices=Template.Priority.choices, required=False)
    collapse_key = serializers.CharField(max_length=64, allow_blank=True, required=False)
    kind = serializers.ChoiceField(choices=Template.Kind.choices, required=False)
    badge_mode = serializers.ChoiceField(choices=Template.BadgeMode.choices, required=False)
    badge = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    sound = serializers.CharField(max_length=100, allow_blank=True, required=False)
    thread_id = serializers.CharField(max_length=64, allow_blank=True, required=False)
    android_channel_id = serializers.CharField(max_length=100, allow_blank=True,
                                               required=False)
    interruption_level = serializers.ChoiceField(choices=Template.InterruptionLevel.choices,
                                                 required=False)
    relevance_score = serializers.FloatField(min_value=0, max_value=1, required=False)
    actions = serializers.ListField(child=ActionSerializer(), max_length=MAX_ACTIONS,
                                    required=False)
    apns_category = serializers.CharField(max_length=64, allow_blank=True, required=False)

    def validate(self, attrs):
        if "actions" in attrs:
            attrs["actions"] = [dict(action) for action in attrs["actions"]]
        return attrs


class SendCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    template = serializers.CharField(
        max_length=100, required=False,
        help_text="The template's name. Either this or message.",
    )
    message = InlineMessageSerializer(
        required=False, help_text="A message posted inline (the same fields and variables as a "
                                  "template). Either this or template.",
    )
    external_ids = serializers.ListField(
        child=IdentifierField(max_length=255), min_length=1, max_length=MAX_EXTERNAL_IDS,
        required=False, help_text=f"The audience: 1 to {MAX_EXTERNAL_IDS:,} customers' external "
                                  "ids (unknown ones are listed in the answer). Or segment.",
    )
    segment = serializers.CharField(max_length=50, required=False,
                                    help_text="The audience: a segment's key. Or external_ids.")
    data = serializers.DictField(required=False,
                                 help_text="Read by the message as {{ data.<key> }}.")
    kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=Device.Kind.choices), required=False,
        max_length=3, help_text="Only these providers; none means every device.",
    )
    transactional = serializers.BooleanField(
        required=False, default=False,
        help_text="Not counted against, nor stopped by, the frequency cap; outside quiet hours "
                  "unless respect_quiet_hours says otherwise.",
    )
    respect_quiet_hours = serializers.BooleanField(
        required=False, help_text="Defer messages due in the customer's quiet hours. Default: "
                                  "true, false for a transactional send.",
    )
    quiet_hours_start = serializers.TimeField(
        required=False, allow_null=True,
        help_text="The send's own quiet window (with quiet_hours_end), in each delivery's time "
                  "zone; none: the global window.")
    quiet_hours_end = serializers.TimeField(required=False, allow_null=True)
    local_time = serializers.TimeField(
        required=False, allow_null=True,
        help_text="Deliver at this time of day in each delivery's time zone (e.g. 09:00); "
                  "none: at once.")
    local_time_passed = serializers.ChoiceField(
        choices=LocalTimePassed.choices, required=False, default=LocalTimePassed.NEXT_DAY,
        help_text="With local_time, for those whose time has passed today: the next day, or "
                  "skipped (local_time_passed).")
    throttle_per_minute = serializers.IntegerField(
        min_value=1, max_value=MAX_THROTTLE_PER_MINUTE, required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True,
                                           help_text="Never sent after this.")
    ttl_seconds = serializers.IntegerField(
        min_value=0, max_value=MAX_TTL_SECONDS, required=False, allow_null=True,
        help_text="How long providers keep trying an offline device; default: the template's.",
    )

    def validate(self, attrs):
        if ("template" in attrs) == ("message" in attrs):
            raise serializers.ValidationError(
                {"template": "Name a template or post a message, not both."})
        if ("external_ids" in attrs) == ("segment" in attrs):
            raise serializers.ValidationError(
                {"segment": "Give external_ids or a segment, not both."})
        if (attrs.get("quiet_hours_start") is None) != (attrs.get("quiet_hours_end") is None):
            raise serializers.ValidationError(
                {"quiet_hours_end": "An own quiet window needs both its start and its end; "
                                    "give neither for the global window."})
        return attrs


class ProgressSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    queued = serializers.IntegerField()
    sending = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    finished = serializers.IntegerField()
    percent = serializers.FloatField(help_text="Finished rows (sent, failed or skipped).")


class SendSerializer(serializers.ModelSerializer):
    template = serializers.SerializerMethodField(help_text="The template's name; null inline.")
    segment = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True)
    audience_size = serializers.SerializerMethodField(
        help_text="Customers targeted by id (null for a segment: see progress.total).")
    transactional = serializers.BooleanField(source="cap_exempt")
    progress = ProgressSerializer(help_text="Rows by status, once the audience is built.")
    reasons = serializers.DictField(
        child=serializers.IntegerField(), source="progress.reasons",
        help_text="Skipped and failed rows by reason (opted_out, frequency_capped, ...).",
    )

    class Meta:
        model = Send
        fields = ["id", "status", "error", "template", "segment", "audience_size", "data",
                  "kinds", "transactional", "respect_quiet_hours", "quiet_hours_start",
                  "quiet_hours_end", "local_time", "local_time_passed", "throttle_per_minute",
                  "expires_at", "ttl_seconds", "progress", "reasons", "created_at", "started_at",
                  "finished_at"]
        read_only_fields = fields

    def get_template(self, send: Send) -> str | None:
        return None if send.template.inline else send.template.name

    def get_audience_size(self, send: Send) -> int | None:
        return None if send.customer_ids is None else len(send.customer_ids)


class SendCreatedSerializer(SendSerializer):
    unknown_external_ids = serializers.ListField(
        child=serializers.CharField(), help_text="Posted external ids no customer has.")

    class Meta(SendSerializer.Meta):
        fields = [*SendSerializer.Meta.fields, "unknown_external_ids"]
        read_only_fields = fields


class DeliveriesQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    json_body = False
    after = serializers.IntegerField(min_value=0, max_value=2**63 - 1, required=False,
                                     default=0, help_text="The last id of the previous page.")
    limit = serializers.IntegerField(min_value=1, max_value=DELIVERIES_PAGE_MAX, required=False,
                                     default=100)
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)


class SendDeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(source="customer__external_id", allow_null=True,
                                        help_text="Null once the customer was erased.")
    device_id = serializers.IntegerField(allow_null=True)
    kind = serializers.CharField(help_text="apns, fcm or webpush; empty for a customer skipped "
                                           "before a device was chosen.")
    status = serializers.ChoiceField(choices=Delivery.Status.choices)
    reason = serializers.CharField()
    error = serializers.CharField()
    not_before = serializers.DateTimeField(allow_null=True)
    sent_at = serializers.DateTimeField(allow_null=True)
    received_at = serializers.DateTimeField(allow_null=True)
    opened_at = serializers.DateTimeField(allow_null=True)


class SendDeliveryPageSerializer(serializers.Serializer):
    results = SendDeliverySerializer(many=True)
    next = serializers.URLField(allow_null=True, help_text="The following page, or null.")

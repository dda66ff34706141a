"""Shapes of the campaign endpoints. A campaign is one document with its steps (and their A/B
variants) nested, so a journey can live in a repository and be sent whole.

Steps link to each other by number: ``"next_step": 3`` is the third step of the ``steps`` list
(1-based, as the admin and the error messages count them); null means "the next step in the
list" for ``next_step`` and "exit" for ``else_step``. A step sent with its ``id`` is updated in
place, keeping the customers waiting on it; existing steps left out are removed, and their
customers move on to where the removed step led."""

from datetime import timedelta

from rest_framework import serializers

from audiences.api.serializers import TimeZoneField
from audiences.models import Segment, Stage
from campaigns.models import Campaign, Step, Variant
from journeyhub.api_errors import StrictFieldsMixin
from notifications.models import Template

MAX_STEPS = 200  # a journey longer than this is a mistake (or an attack on the validator)
MAX_VARIANTS = 26
MAX_ID = 2**31 - 1  # steps, templates and segments have 32-bit keys
MAX_DURATION = timedelta(days=3650)  # waits, cooldowns and windows; the clock math stays in range


class BoundedDurationField(serializers.DurationField):
    """A duration from 0 to ten years; a number of days Python cannot hold is an error too."""

    def __init__(self, **kwargs):
        super().__init__(min_value=timedelta(0), max_value=MAX_DURATION, **kwargs)

    def to_internal_value(self, value):
        try:
            return super().to_internal_value(value)
        except OverflowError:
            raise serializers.ValidationError("Too long: at most 3650 days.")

CAMPAIGN_FIELDS = [
    "name", "description", "kind", "stage", "segment", "send_at", "crontab",
    "crontab_time_zone", "trigger", "trigger_event_name", "trigger_event_filter",
    "trigger_stage", "trigger_segment", "reentry", "reentry_cooldown", "starts_at", "ends_at",
    "max_enrollments", "goal_event_name", "goal_event_filter", "goal_window",
    "goal_revenue_property", "holdout_percent", "transactional", "throttle_per_minute",
    "respect_quiet_hours", "quiet_hours_start", "quiet_hours_end", "local_send_time",
    "local_time_passed", "message_expires_at",
]
READ_ONLY_FIELDS = ["id", "status", "beat_task", "created_at", "updated_at", "launched_at",
                    "finished_at"]


def _pk_field(queryset, **kwargs):
    return serializers.PrimaryKeyRelatedField(
        queryset=queryset, pk_field=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        **kwargs,
    )


def _segment_field(**kwargs):
    """A segment named by its key, as the segments API names it: a journey and its audiences
    then read the same on every installation, whatever ids the rows got."""
    return serializers.SlugRelatedField(
        slug_field="key", queryset=Segment.objects.all(), required=False, allow_null=True,
        error_messages={"does_not_exist": "No segment with key '{value}'.",
                        "invalid": "Give a segment key (a string)."},
        help_text="The segment's key.", **kwargs,
    )


class VariantSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    template = _pk_field(Template.objects.all())
    weight = serializers.IntegerField(min_value=0, max_value=10_000, default=50)

    class Meta:
        model = Variant
        fields = ["name", "template", "weight"]
        extra_kwargs = {"name": {"validators": []}}


class StepSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    id = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID,
        help_text="An existing step of this campaign to update in place; omit for a new step.",
    )
    next_step = serializers.IntegerField(
        source="next_step_id", required=False, allow_null=True, min_value=1, max_value=MAX_STEPS,
        help_text="The number (1-based) of the step to go to next; null: the following step.",
    )
    else_step = serializers.IntegerField(
        source="else_step_id", required=False, allow_null=True, min_value=1, max_value=MAX_STEPS,
        help_text="Branches: the step number on no / timed out; null: exit.",
    )
    template = _pk_field(Template.objects.all(), required=False, allow_null=True)
    segment = _segment_field()
    duration = BoundedDurationField(
        required=False, allow_null=True,
        help_text='Wait / wait-for-event timeout: ISO 8601 ("P2D", "PT30M") or "2 00:00:00".',
    )
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), required=False, max_length=7,
        help_text="Wait until: allowed weekdays, 0=Monday ... 6=Sunday; empty = any day.",
    )
    event_filter = serializers.DictField(required=False)
    attribute_value = serializers.JSONField(required=False, allow_null=True)
    percent = serializers.DecimalField(max_digits=5, decimal_places=2, min_value=0,
                                       max_value=100, required=False, allow_null=True)
    variants = VariantSerializer(many=True, required=False, max_length=MAX_VARIANTS)

    class Meta:
        model = Step
        fields = ["id", "kind", "name", "next_step", "else_step", "template", "variants",
                  "duration", "local_time", "weekdays", "event_name", "event_filter",
                  "segment", "percent", "attribute_key", "attribute_value", "stage"]

    def to_representation(self, step: Step) -> dict:
        data = super().to_representation(step)
        numbers = self.context.get("step_numbers", {})
        data["next_step"] = numbers.get(step.next_step_id)
        data["else_step"] = numbers.get(step.else_step_id)
        return data


class CampaignSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    segment = _segment_field()
    trigger_segment = _segment_field()
    trigger_event_filter = serializers.DictField(required=False)
    goal_event_filter = serializers.DictField(required=False)
    holdout_percent = serializers.DecimalField(max_digits=5, decimal_places=2, min_value=0,
                                               max_value=100, required=False)
    max_enrollments = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False,
                                               allow_null=True)
    throttle_per_minute = serializers.IntegerField(min_value=1, max_value=MAX_ID,
                                                   required=False, allow_null=True)
    crontab_time_zone = TimeZoneField(required=False, help_text="The crontab's time zone.")
    reentry_cooldown = BoundedDurationField(required=False, allow_null=True)
    goal_window = BoundedDurationField(required=False)
    beat_task = serializers.CharField(source="beat_task.name", read_only=True, allow_null=True,
                                      help_text="The beat row that starts this campaign's runs.")
    steps = StepSerializer(
        many=True, required=False, max_length=MAX_STEPS,
        help_text="The whole journey, in order. Absent on update: the steps stay as they are.",
    )

    class Meta:
        model = Campaign
        fields = READ_ONLY_FIELDS + CAMPAIGN_FIELDS + ["steps"]
        read_only_fields = READ_ONLY_FIELDS

    def to_representation(self, campaign: Campaign) -> dict:
        steps = list(campaign.steps.prefetch_related("variants"))
        numbers = {step.pk: number for number, step in enumerate(steps, start=1)}
        data = super().to_representation(campaign)
        data["steps"] = StepSerializer(steps, many=True,
                                       context={**self.context, "step_numbers": numbers}).data
        return data

    def service_arguments(self) -> tuple[dict, list[dict] | None]:
        """(campaign fields, step items for campaigns.services.steps_save or None)."""
        fields = dict(self.validated_data)
        steps = fields.pop("steps", None)
        if steps is None:
            return fields, None
        items = []
        for number, step in enumerate(steps, start=1):
            item = {**step, "key": number, "next": step.get("next_step_id"),
                    "else": step.get("else_step_id")}
            item.pop("next_step_id", None)
            item.pop("else_step_id", None)
            item["variants"] = [dict(v) for v in step.get("variants", [])]
            items.append(item)
        return fields, items


class CampaignListSerializer(serializers.ModelSerializer):
    """The list's rows: the campaign without its steps."""

    segment = serializers.SlugRelatedField(slug_field="key", read_only=True, allow_null=True,
                                           help_text="The segment's key.")
    stage = serializers.ChoiceField(Stage.choices, read_only=True, allow_blank=True,
                                    help_text="Empty when the campaign names no stage.")
    trigger = serializers.ChoiceField(Campaign.Trigger.choices, read_only=True, allow_blank=True,
                                      help_text="Empty for broadcasts.")

    class Meta:
        model = Campaign
        fields = ["id", "name", "kind", "status", "stage", "segment", "send_at", "crontab",
                  "trigger", "created_at", "updated_at", "launched_at", "finished_at"]
        read_only_fields = fields


def errors_flat(errors) -> dict:
    """DRF nests a list field's item errors (as [{}, {"template": [...]}] or {1: {...}}); the
    API reports flat field -> messages, naming the step: "Step 2: template: ..."."""
    steps = errors.get("steps") if isinstance(errors, dict) else None
    if isinstance(steps, list) and any(isinstance(item, dict) for item in steps):
        steps = dict(enumerate(steps))
    if not isinstance(steps, dict):
        return errors
    if not all(str(index).isdigit() for index in steps):  # about the list itself
        return {**errors, "steps": [m for _, m in _messages(steps)]}
    messages = []
    for index, item in sorted(steps.items(), key=lambda pair: int(pair[0])):
        if isinstance(item, dict):
            messages += [f"Step {int(index) + 1}: {name}: {m}" for name, m in _messages(item)]
        elif item:
            messages += [str(m) for m in (item if isinstance(item, list) else [item])]
    return {**errors, "steps": messages}


def _messages(item: dict, prefix: str = ""):
    for name, value in item.items():
        if isinstance(value, dict):
            yield from _messages(value, f"{prefix}{name}.")
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            for index, child in enumerate(value):
                if isinstance(child, dict):
                    yield from _messages(child, f"{prefix}{name}[{index}].")
        else:
            for message in value if isinstance(value, list) else [value]:
                yield f"{prefix}{name}", str(message)

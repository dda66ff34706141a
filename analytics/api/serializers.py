"""Query parameters in, report dataclasses (analytics.reports) out. The output serializers only
describe and render; every number is computed by the selectors."""

from datetime import date, timedelta

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from journeyhub.api_errors import StrictFieldsMixin

# Dates outside this span are typos (and would overflow date arithmetic near year 9999).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
MAX_RANGE_DAYS = 366  # per-day series: the journey map and delivery health answer one row a day
DEFAULT_RANGE_DAYS = 30
PAGE_LIMIT_MAX = 1000
COMPUTED_AT_HELP = "When the rollups behind these numbers were last refreshed (null: never)."


def _day_in_span(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise serializers.ValidationError(f"Give a day between {FIRST_DAY} and {LAST_DAY}.")
    return value


@extend_schema_field({"type": "string", "format": "date", "pattern": "^2[0-9]{3}-"})
class DayField(serializers.DateField):
    """A UTC day, YYYY-MM-DD, from 2000-01-01 to 2999-12-31 (the schema says "2xxx")."""

    def __init__(self, **kwargs):
        super().__init__(validators=[_day_in_span], **kwargs)


class RangeQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    """``since`` and ``until``: UTC days, both included; either may be left out."""

    json_body = False  # query parameters

    since = DayField(required=False, help_text="First day (UTC), YYYY-MM-DD.")
    until = DayField(required=False, help_text="Last day (UTC), YYYY-MM-DD, included.")

    def validate(self, data):
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise serializers.ValidationError({"until": ["Must not be before since."]})
        return data


class BoundedRangeQuerySerializer(RangeQuerySerializer):
    """A range of at most MAX_RANGE_DAYS; by default the last 30 days up to today."""

    def validate(self, data):
        data = super().validate(data)
        today = self.context["today"]
        until = data.get("until") or (
            min(data["since"] + timedelta(days=DEFAULT_RANGE_DAYS - 1), today)
            if data.get("since") else today)
        since = data.get("since") or until - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if since > until:
            raise serializers.ValidationError({"since": ["Must not be after until."]})
        if (until - since).days + 1 > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"until": [f"At most {MAX_RANGE_DAYS} days from since."]})
        return {**data, "since": since, "until": until}


class JourneyMapQuerySerializer(BoundedRangeQuerySerializer):
    attribution_window_hours = serializers.IntegerField(
        required=False, default=7 * 24, min_value=1, max_value=90 * 24,
        help_text="A campaign's message counts for a forward move made within this many hours.",
    )


class TopCampaignsQuerySerializer(RangeQuerySerializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=100)


class DaysQuerySerializer(RangeQuerySerializer):
    after = DayField(required=False,
                     help_text="Keyset cursor: the last day of the previous page.")
    limit = serializers.IntegerField(required=False, default=100, min_value=1,
                                     max_value=PAGE_LIMIT_MAX)


class CountsSerializer(serializers.Serializer):
    targeted = serializers.IntegerField(
        allow_null=True, help_text="Customers targeted (once per send); null per platform.")
    sent = serializers.IntegerField(help_text="Messages the provider accepted (per device).")
    delivered = serializers.IntegerField(help_text="Messages the app reported received.")
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    pending = serializers.IntegerField(help_text="Queued or being sent.")
    opened = serializers.IntegerField()
    conversions = serializers.IntegerField(
        help_text="Treatment conversions credited to a message sent here.")
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=False,
                                       help_text="Revenue of those conversions.")
    untargeted_conversions = serializers.IntegerField(
        help_text="Treatment conversions of customers never targeted: outside every rate.")
    untargeted_revenue = serializers.DecimalField(max_digits=16, decimal_places=2,
                                                  coerce_to_string=False)
    open_rate = serializers.FloatField(allow_null=True, help_text="opened / sent")
    delivery_rate = serializers.FloatField(allow_null=True, help_text="delivered / sent")
    conversion_rate = serializers.FloatField(
        allow_null=True, help_text="conversions / targeted; null when nobody was targeted")
    failed_by_reason = serializers.DictField(child=serializers.IntegerField())
    skipped_by_reason = serializers.DictField(child=serializers.IntegerField())


class SliceSerializer(serializers.Serializer):
    key = serializers.CharField()
    label = serializers.CharField()
    step_id = serializers.IntegerField(allow_null=True)
    variant_id = serializers.IntegerField(allow_null=True)
    counts = CountsSerializer()


class ComparisonSerializer(serializers.Serializer):
    rate_a = serializers.FloatField(allow_null=True)
    rate_b = serializers.FloatField(allow_null=True)
    absolute_lift = serializers.FloatField(allow_null=True, help_text="rate_a - rate_b")
    relative_lift = serializers.FloatField(allow_null=True, help_text="absolute_lift / rate_b")
    ci_low = serializers.FloatField(allow_null=True, help_text="95% interval of the difference")
    ci_high = serializers.FloatField(allow_null=True)
    z = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True, help_text="Two-sided, pooled z-test.")
    significant = serializers.BooleanField(help_text="p_value < 0.05")


class AbTestSerializer(serializers.Serializer):
    step_id = serializers.IntegerField()
    step_label = serializers.CharField()
    metric = serializers.ChoiceField(choices=["conversion", "open"])
    variants = SliceSerializer(many=True)
    leader = serializers.CharField(allow_null=True)
    runner_up = serializers.CharField(allow_null=True)
    comparison = ComparisonSerializer(allow_null=True, help_text="Leader against runner-up.")
    winner = serializers.CharField(allow_null=True, help_text="Only when significant.")


class CampaignReportSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    campaign_name = serializers.CharField()
    since = serializers.DateField(allow_null=True)
    until = serializers.DateField(allow_null=True)
    totals = CountsSerializer()
    enrolled = serializers.DictField(child=serializers.IntegerField(),
                                     help_text="Enrollments that entered in the range, by group.")
    computed_at = serializers.DateTimeField(allow_null=True, help_text=COMPUTED_AT_HELP)
    steps = SliceSerializer(many=True)
    variants = SliceSerializer(many=True)
    platforms = SliceSerializer(many=True)
    ab_tests = AbTestSerializer(many=True)


class GroupRateSerializer(serializers.Serializer):
    group = serializers.CharField()
    enrolled = serializers.IntegerField()
    conversions = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=False)
    rate = serializers.FloatField(allow_null=True, help_text="conversions / enrolled")


class LiftSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField(allow_null=True, help_text=COMPUTED_AT_HELP)
    campaign_id = serializers.IntegerField()
    groups = serializers.DictField(child=GroupRateSerializer())
    vs_holdout = ComparisonSerializer(allow_null=True, help_text="Treatment against holdout.")
    vs_control = ComparisonSerializer(allow_null=True,
                                      help_text="Treatment against the global control group.")


class StageSummarySerializer(serializers.Serializer):
    stage = serializers.CharField()
    label = serializers.CharField()
    customers_now = serializers.IntegerField()
    entries = serializers.IntegerField()
    exits = serializers.IntegerField()
    entries_per_day = serializers.ListField(child=serializers.IntegerField())
    exits_per_day = serializers.ListField(child=serializers.IntegerField())
    median_seconds = serializers.FloatField(allow_null=True)
    median_days = serializers.FloatField(allow_null=True)


class CampaignAttributionSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    campaign_name = serializers.CharField()
    to_stage = serializers.CharField()
    transitions = serializers.IntegerField()


class JourneyMapSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField(allow_null=True, help_text=COMPUTED_AT_HELP)
    since = serializers.DateField()
    until = serializers.DateField()
    days = serializers.ListField(child=serializers.DateField())
    stages = StageSummarySerializer(many=True)
    matrix = serializers.DictField(child=serializers.DictField(child=serializers.IntegerField()),
                                   help_text="matrix[from_stage][to_stage]: transitions.")
    forward_transitions = serializers.IntegerField()
    campaigns = CampaignAttributionSerializer(many=True)
    advocacy_inflow = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Moves into advocacy in the range by cause (stage rule name, or the cause).")


class CampaignRankSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    name = serializers.CharField()
    counts = CountsSerializer()
    enrolled = serializers.IntegerField(help_text="Treatment enrollments entered in the range.")


class HealthDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    dead_tokens = serializers.IntegerField()


class DeliveryHealthSerializer(serializers.Serializer):
    computed_at = serializers.DateTimeField(allow_null=True, help_text=COMPUTED_AT_HELP)
    since = serializers.DateField()
    until = serializers.DateField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    failure_rate = serializers.FloatField(allow_null=True)
    failed_by_reason = serializers.DictField(child=serializers.IntegerField())
    skipped_by_reason = serializers.DictField(child=serializers.IntegerField())
    days = HealthDaySerializer(many=True)
    inactive_devices = serializers.IntegerField()
    inactive_by_reason = serializers.DictField(child=serializers.IntegerField())


class ReportDaySerializer(serializers.Serializer):
    day = serializers.DateField()
    counts = CountsSerializer()


class ReportDayPageSerializer(serializers.Serializer):
    results = ReportDaySerializer(many=True)
    next = serializers.CharField(allow_null=True, help_text="The next page's URL, or null.")
    computed_at = serializers.DateTimeField(allow_null=True, help_text=COMPUTED_AT_HELP)


class ReferralWeekSerializer(serializers.Serializer):
    week = serializers.DateField(help_text="The week's Monday.")
    referrers = serializers.IntegerField(help_text="Customers whose code brought a sign-up.")
    signups = serializers.IntegerField()
    converted = serializers.IntegerField(help_text="Of the week's sign-ups, converted since.")
    signups_per_referrer = serializers.FloatField(allow_null=True)
    conversion_share = serializers.FloatField(allow_null=True, help_text="converted / signups")
    k_factor = serializers.FloatField(
        allow_null=True, help_text="signups_per_referrer x conversion_share; null without sign-ups")


class ReferrerSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    signups = serializers.IntegerField()
    converted = serializers.IntegerField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2, coerce_to_string=False)


class ReferralCampaignSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    name = serializers.CharField()
    asks_sent = serializers.IntegerField()
    asks_opened = serializers.IntegerField()
    open_rate = serializers.FloatField(allow_null=True)
    signups = serializers.IntegerField(allow_null=True,
                                       help_text="Goal conversions when the goal is a sign-up.")


class ReferralReportSerializer(serializers.Serializer):
    since = serializers.DateField()
    until = serializers.DateField()
    asks_sent = serializers.IntegerField(help_text="Messages sent by referral campaigns.")
    asks_opened = serializers.IntegerField()
    ask_open_rate = serializers.FloatField(allow_null=True)
    links_opened = serializers.IntegerField()
    signups = serializers.IntegerField()
    referred_conversions = serializers.IntegerField()
    referred_revenue = serializers.DecimalField(max_digits=16, decimal_places=2,
                                                coerce_to_string=False)
    new_customers = serializers.IntegerField(help_text="Customers created in the range.")
    referred_new_customers = serializers.IntegerField()
    referral_share = serializers.FloatField(allow_null=True,
                                            help_text="referred_new_customers / new_customers")
    weeks = ReferralWeekSerializer(many=True)
    top_referrers = ReferrerSerializer(many=True)
    campaigns = ReferralCampaignSerializer(many=True)
    computed_at = serializers.DateTimeField(allow_null=True, help_text=COMPUTED_AT_HELP)

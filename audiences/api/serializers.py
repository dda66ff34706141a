"""Shapes of the customer, consent and event endpoints. Validation only: the writes are services."""

from datetime import timedelta

from rest_framework import serializers

from audiences.models import (
    TIME_ZONE_CHOICES,
    Customer,
    Event,
    Topic,
    TopicOptOut,
    external_id_problem,
    validate_external_id,
)
from journeyhub.api_errors import IdentifierField, StrictFieldsMixin
from journeyhub.json_rules import UNSTORABLE_TEXT

EXTERNAL_ID_MAX = Customer._meta.get_field("external_id").max_length
EVENT_NAME_MAX = Event._meta.get_field("name").max_length
EVENT_ID_MAX = Event._meta.get_field("client_event_id").max_length
FUTURE_TOLERANCE = timedelta(days=1)  # clocks on phones drift; a day ahead is a bug, not drift
# Loose BCP 47: language, then subtags (en, pt-BR, zh-Hant-TW); the app's catalogue decides more.
LOCALE_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
TOPIC_LIST_MAX = 200


class TimeZoneField(serializers.ChoiceField):
    """An IANA time zone name; the schema lists them all."""

    def __init__(self, **kwargs):
        kwargs.setdefault("help_text", "An IANA time zone, e.g. Europe/Lisbon.")
        super().__init__(TIME_ZONE_CHOICES, error_messages={
            "invalid_choice": "'{input}' is not an IANA time zone (e.g. Europe/Lisbon)."},
            **kwargs)


class CustomerSerializer(serializers.ModelSerializer):
    opted_out_topics = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "external_id", "first_name", "last_name", "email", "locale", "time_zone",
            "attributes", "push_opt_out", "opted_out_topics", "stage", "stage_changed_at",
            "last_seen_at", "referral_code", "referred_by", "bucket", "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    email = serializers.EmailField(read_only=True, allow_blank=True,
                                   help_text="Empty when unknown.")
    referred_by = serializers.SlugRelatedField(
        slug_field="external_id", read_only=True, allow_null=True,
        help_text="The external id of the customer who referred this one, if any.",
    )

    def get_opted_out_topics(self, customer: Customer) -> list[str]:
        return list(
            TopicOptOut.objects.filter(customer=customer)
            .order_by("topic__key").values_list("topic__key", flat=True)
        )


class MyProfileSerializer(serializers.ModelSerializer):
    """A customer's view of themselves. Attributes, stage and bucket describe the customer for
    the brand's marketing (and bucket decides holdouts), so the app does not see them."""

    email = serializers.EmailField(read_only=True, allow_blank=True,
                                   help_text="Empty when unknown.")

    class Meta:
        model = Customer
        fields = [
            "external_id", "first_name", "last_name", "email", "locale", "time_zone",
            "referral_code",
        ]
        read_only_fields = fields


class CustomerProfileUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    """What a customer may change about themselves through the app."""

    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    locale = serializers.RegexField(
        LOCALE_PATTERN, max_length=35, required=False,
        error_messages={"invalid": "Give a BCP 47 language tag, e.g. en or pt-BR."},
    )
    time_zone = TimeZoneField(required=False)


class CustomerUpsertSerializer(CustomerProfileUpdateSerializer):
    """What the brand backend may set. Absent fields keep their value."""

    email = serializers.EmailField(required=False, allow_blank=True)
    attributes = serializers.DictField(
        required=False,
        help_text="Merged into the stored attributes key by key; a null value deletes the key.",
    )
    push_opt_out = serializers.BooleanField(required=False)
    opted_out_topics = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=TOPIC_LIST_MAX,
        help_text="Replaces the customer's topic opt-outs (topic keys, see GET /topics/).",
    )
    referred_by_code = serializers.CharField(
        max_length=16, required=False, write_only=True,
        help_text="The referral code the customer signed up with. Links them to the referrer "
                  "(once: the first referrer stays) and records a referral_signup event on the "
                  "referrer.",
    )


class ConsentUpdateSerializer(StrictFieldsMixin, serializers.Serializer):
    push_opt_out = serializers.BooleanField()
    opted_out_topics = serializers.ListField(
        child=serializers.CharField(max_length=50), max_length=TOPIC_LIST_MAX,
        help_text="Every topic the customer opts out of; the others are opted in.",
    )


class TopicConsentSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    opted_in = serializers.BooleanField()


class ConsentSerializer(serializers.Serializer):
    push_opt_out = serializers.BooleanField()
    topics = TopicConsentSerializer(many=True)


class TopicSerializer(serializers.ModelSerializer):
    class Meta:
        model = Topic
        fields = ["key", "name", "description"]


class CustomerTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()


class EventSerializer(StrictFieldsMixin, serializers.Serializer):
    """One event from the brand backend. ``event_items.parse_event_items`` applies the same rules to
    batches without a serializer per item; tests hold the two to the same answers."""

    customer_id = IdentifierField(
        max_length=EXTERNAL_ID_MAX, trim_whitespace=False, validators=[validate_external_id],
        help_text="The customer's external id (an integer is taken as its digits); an unknown "
                  "id creates the customer.",
    )
    name = serializers.CharField(max_length=EVENT_NAME_MAX, trim_whitespace=False)
    properties = serializers.DictField(required=False, default=dict)
    occurred_at = serializers.DateTimeField(
        required=False, help_text="ISO 8601; defaults to now; at most a day in the future."
    )
    event_id = IdentifierField(
        max_length=EVENT_ID_MAX, required=False, allow_null=True, trim_whitespace=False,
        help_text="The sender's id for this event (an integer is taken as its digits): a retry "
                  "with the same id is a duplicate.",
    )

    def validate_occurred_at(self, value):
        if value > self.context["now"] + FUTURE_TOLERANCE:
            raise serializers.ValidationError("Must not be more than a day in the future.")
        return value


class MyEventSerializer(EventSerializer):
    """One event from the app: always the token's customer."""

    customer_id = None


class ReferralOpenedSerializer(StrictFieldsMixin, serializers.Serializer):
    code = serializers.CharField(max_length=16, help_text="The referral code in the link opened.")


class ReferralOpenedResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "duplicate"],
                                     help_text="duplicate: this customer opened it before.")
    referrer = serializers.CharField(help_text="The external id of the link's owner.")


class EventBatchSerializer(StrictFieldsMixin, serializers.Serializer):
    """Documents the batch body; the view validates items with ``parse_event_items``."""

    events = EventSerializer(many=True, min_length=1, max_length=1000)


class MyEventBatchSerializer(StrictFieldsMixin, serializers.Serializer):
    events = MyEventSerializer(many=True, min_length=1, max_length=1000)


class EventCreatedSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["created", "duplicate"])
    id = serializers.IntegerField()


class EventBatchItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["created", "duplicate", "invalid"])
    id = serializers.IntegerField(required=False, help_text="Absent when invalid.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False,
        help_text="Only when invalid: field name to messages.",
    )


class EventBatchResultSerializer(serializers.Serializer):
    results = EventBatchItemResultSerializer(many=True)


def external_id_errors(external_id: str) -> list[str]:
    if len(external_id) > EXTERNAL_ID_MAX:
        return [f"Ensure this field has no more than {EXTERNAL_ID_MAX} characters."]
    if UNSTORABLE_TEXT.search(external_id):
        return ["Must not contain NUL characters or lone surrogates."]
    problem = external_id_problem(external_id)
    return [problem] if problem else []


class CustomerMergeSerializer(StrictFieldsMixin, serializers.Serializer):
    """Who to merge: the anonymous customer by external id (your backend knows it), or the
    app's customer token for it (which proves the app holds that anonymous customer)."""

    anonymous_id = serializers.CharField(
        max_length=EXTERNAL_ID_MAX, required=False, trim_whitespace=False,
        help_text="The anonymous customer's external id (the id the app made).",
    )
    anonymous_token = serializers.CharField(
        max_length=4096, required=False, write_only=True,
        help_text="Instead of anonymous_id: the customer token the app used before login.",
    )
    issue_token = serializers.BooleanField(
        default=False, help_text="Also mint a token for the known customer (needs tokens:write), "
                                 "for the app to use from now on.",
    )

    def validate(self, data: dict) -> dict:
        if ("anonymous_id" in data) == ("anonymous_token" in data):
            raise serializers.ValidationError("Give anonymous_id or anonymous_token (one).")
        return data


class CustomerMergeResultSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["merged", "already_merged"],
        help_text="already_merged: this merge was done before; nothing moved now.",
    )
    anonymous_id = serializers.CharField()
    merged_at = serializers.DateTimeField()
    moved = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Rows moved to the known customer, by kind (events, devices, deliveries, "
                  "enrollments...).",
    )
    customer = CustomerSerializer(help_text="The known customer after the merge.")
    token = serializers.CharField(required=False, help_text="Only with issue_token.")
    expires_at = serializers.DateTimeField(required=False, help_text="Only with issue_token.")


class CustomerErasureSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=["erased", "already_erased"],
        help_text="already_erased: a customer with this id was erased before.",
    )
    erased_at = serializers.DateTimeField()
    removed = serializers.DictField(
        child=serializers.IntegerField(),
        help_text="Rows deleted or anonymised, by kind.",
    )

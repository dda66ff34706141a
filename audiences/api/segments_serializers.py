"""Shapes of the segment endpoints. Validation only: the writes are services."""

from rest_framework import serializers

from audiences.api.serializers import EXTERNAL_ID_MAX
from audiences.models import Customer, Segment
from audiences.segments import RULES_REQUIRED
from journeyhub.api_errors import StrictFieldsMixin

MEMBERS_PER_REQUEST = 10_000  # external ids per member change: one request, one transaction
MEMBERS_PAGE_DEFAULT = 100
MEMBERS_PAGE_MAX = 1000
ITEM_ERRORS_SHOWN = 20  # bad ids reported at once; the rest follow once these are fixed
STATIC_WITHOUT_RULES = (
    "A static segment has no rules: set its members with PUT /segments/{key}/members/."
)


class SegmentSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    rules = serializers.DictField(
        required=False,
        help_text='Dynamic segments: the rules as JSON, e.g. {"all": [{"stage": {"in": '
                  '["engagement"]}}]}; the grammar is in the README (Segments). Static: {}.',
    )

    class Meta:
        model = Segment
        fields = ["id", "key", "name", "description", "kind", "rules", "created_at",
                  "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def validate(self, data: dict) -> dict:
        kind = data.get("kind", getattr(self.instance, "kind", Segment.Kind.DYNAMIC))
        rules = data.get("rules", getattr(self.instance, "rules", None))
        if kind == Segment.Kind.STATIC and data.get("rules"):
            raise serializers.ValidationError({"rules": [STATIC_WITHOUT_RULES]})
        if kind == Segment.Kind.DYNAMIC and rules in (None, {}):
            raise serializers.ValidationError({"rules": [RULES_REQUIRED]})
        return data


class SegmentCountSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Customers in the segment now.")


class SegmentMemberSerializer(serializers.ModelSerializer):
    email = serializers.EmailField(read_only=True, allow_blank=True,
                                   help_text="Empty when unknown.")

    class Meta:
        model = Customer
        fields = ["external_id", "first_name", "last_name", "email", "locale", "time_zone",
                  "stage", "last_seen_at", "created_at"]
        read_only_fields = fields


class SegmentMembersPageSerializer(serializers.Serializer):
    results = SegmentMemberSerializer(many=True)
    next = serializers.CharField(allow_null=True,
                                 help_text="The next page's URL, or null on the last page.")


class SegmentMembersQuerySerializer(StrictFieldsMixin, serializers.Serializer):
    json_body = False  # query parameters

    limit = serializers.IntegerField(min_value=1, max_value=MEMBERS_PAGE_MAX,
                                     default=MEMBERS_PAGE_DEFAULT,
                                     help_text=f"1 to {MEMBERS_PAGE_MAX}.")
    after = serializers.IntegerField(
        min_value=0, max_value=2**63 - 1, required=False,
        help_text="The cursor from the previous page's next URL: members after it.",
    )


class ExternalIdsField(serializers.ListField):
    """A list of external ids whose bad items are reported as flat messages ("Item 3: ...")
    under the field, in the API's error shape."""

    child = serializers.CharField(max_length=EXTERNAL_ID_MAX, trim_whitespace=False)

    def __init__(self, **kwargs):
        super().__init__(max_length=MEMBERS_PER_REQUEST, **kwargs)

    def run_child_validation(self, data):
        try:
            return super().run_child_validation(data)
        except serializers.ValidationError as error:
            messages = [f"Item {index}: {message}" for index, item in error.detail.items()
                        for message in item]
            raise serializers.ValidationError(messages[:ITEM_ERRORS_SHOWN])


class SegmentMembersReplaceSerializer(StrictFieldsMixin, serializers.Serializer):
    external_ids = ExternalIdsField(
        help_text=f"Every member, by external id (at most {MEMBERS_PER_REQUEST:,}); an empty "
                  "list empties the segment.",
    )


class SegmentMembersChangeSerializer(StrictFieldsMixin, serializers.Serializer):
    add = ExternalIdsField(required=False, help_text="External ids to add.")
    remove = ExternalIdsField(required=False,
                              help_text="External ids to remove; one that is not a member is "
                                        "skipped.")

    def validate(self, data: dict) -> dict:
        if not data.get("add") and not data.get("remove"):
            raise serializers.ValidationError("Give external ids to add, to remove, or both.")
        if len(data.get("add", [])) + len(data.get("remove", [])) > MEMBERS_PER_REQUEST:
            raise serializers.ValidationError(
                f"At most {MEMBERS_PER_REQUEST:,} external ids per request, add and remove "
                "together."
            )
        return data


class SegmentMembersCountSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Members now.")


class SegmentMembersChangedSerializer(SegmentMembersCountSerializer):
    added = serializers.IntegerField(help_text="Customers who were not members and now are.")
    removed = serializers.IntegerField(help_text="Members who no longer are.")

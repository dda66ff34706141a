"""Shapes of the template endpoints. Validation only: the writes are notifications.services."""

from rest_framework import serializers

from audiences.api.serializers import LOCALE_PATTERN
from audiences.models import Topic
from journeyhub.api_errors import StrictFieldsMixin
from notifications.models import (
    ACTION_TITLE_MAX,
    MAX_ACTIONS,
    Template,
    TemplateTranslation,
)

MAX_TRANSLATIONS = 100


class TranslationSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    locale = serializers.RegexField(
        LOCALE_PATTERN, max_length=35,
        error_messages={"invalid": "Give a BCP 47 language tag, e.g. en or pt-BR."},
    )

    class Meta:
        model = TemplateTranslation
        fields = ["locale", "title", "body"]


class ActionSerializer(StrictFieldsMixin, serializers.Serializer):
    id = serializers.RegexField(r"^[A-Za-z0-9_-]{1,32}$", max_length=32,
                                help_text="Reported back with the open it causes.")
    title = serializers.CharField(max_length=ACTION_TITLE_MAX)
    url = serializers.CharField(max_length=500, allow_blank=True, required=False,
                                help_text="Deep link or web URL the button opens.")


class TemplateSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    topic = serializers.SlugRelatedField(
        slug_field="key", queryset=Topic.objects.all(), required=False, allow_null=True,
        help_text="Consent topic key (see GET /topics/): customers who opted out are skipped.",
    )
    data = serializers.DictField(required=False, help_text="Custom key/value data.")
    actions = serializers.ListField(
        child=ActionSerializer(), max_length=MAX_ACTIONS, required=False,
        help_text="Buttons under the notification (APNs category, FCM data, Web Push actions).",
    )
    ttl_seconds = serializers.IntegerField(min_value=0, max_value=28 * 24 * 3600,
                                           required=False)
    translations = TranslationSerializer(many=True, required=False,
                                         max_length=MAX_TRANSLATIONS)

    class Meta:
        model = Template
        fields = ["id", "name", "kind", "title", "body", "image_url", "url", "data", "topic",
                  "priority", "ttl_seconds", "collapse_key", "strict", "badge_mode", "badge",
                  "sound", "thread_id", "android_channel_id", "interruption_level",
                  "relevance_score", "actions", "apns_category", "translations", "created_at",
                  "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]

    def service_arguments(self) -> tuple[dict, list[dict] | None]:
        """(template fields, translations or None) for notifications.services.template_save."""
        fields = dict(self.validated_data)
        if "actions" in fields:
            fields["actions"] = [dict(action) for action in fields["actions"]]
        translations = fields.pop("translations", None)
        return fields, [dict(t) for t in translations] if translations is not None else None

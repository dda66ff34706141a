"""campaigns' sections of a customer's data export (right of access): the campaigns they
were enrolled in and the conversions credited to them."""

from rest_framework import serializers

from audiences.access import register_access_section
from campaigns.models import Conversion, Enrollment

ROWS_CHUNK = 2000  # rows read per query while the export streams


class EnrollmentExportSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    campaign = serializers.CharField(help_text="The campaign's name.")
    state = serializers.ChoiceField(choices=Enrollment.State.choices)
    group = serializers.ChoiceField(choices=Enrollment.Group.choices)
    entered_at = serializers.DateTimeField()
    exited_at = serializers.DateTimeField(allow_null=True)
    exit_reason = serializers.CharField()


class ConversionExportSerializer(serializers.Serializer):
    campaign_id = serializers.IntegerField()
    campaign = serializers.CharField(help_text="The campaign's name.")
    group = serializers.ChoiceField(choices=Enrollment.Group.choices)
    revenue = serializers.DecimalField(max_digits=12, decimal_places=2)
    occurred_at = serializers.DateTimeField()


def _rows(queryset, serializer, columns: tuple[str, ...]):
    names = list(serializer().fields)
    return (dict(zip(names, row, strict=True))
            for row in queryset.values_list(*columns).iterator(chunk_size=ROWS_CHUNK))


def _enrollments(customer):
    return _rows(Enrollment.objects.filter(customer=customer).order_by("entered_at", "pk"),
                 EnrollmentExportSerializer,
                 ("campaign_id", "campaign__name", "state", "group", "entered_at", "exited_at",
                  "exit_reason"))


def _conversions(customer):
    return _rows(Conversion.objects.filter(customer=customer).order_by("occurred_at", "pk"),
                 ConversionExportSerializer,
                 ("campaign_id", "campaign__name", "group", "revenue", "occurred_at"))


def register_sections() -> None:
    register_access_section("enrollments", rows=_enrollments, schema=EnrollmentExportSerializer)
    register_access_section("conversions", rows=_conversions, schema=ConversionExportSerializer)

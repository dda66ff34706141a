"""audiences' sections of a customer's data export (right of access), and the export's
documented shape, assembled from every app's registered sections."""

from django.core.exceptions import ValidationError
from rest_framework import serializers

from audiences.access import access_sections, register_access_section
from audiences.api.serializers import CustomerSerializer
from audiences.models import (
    Customer,
    CustomerMerge,
    Event,
    Segment,
    SegmentMember,
    StageTransition,
    TopicOptOut,
)
from audiences.selectors import customers_matching

EVENTS_CHUNK = 2000  # events read per query while the export streams


class ConsentExportSerializer(serializers.Serializer):
    push_opt_out = serializers.BooleanField()
    opted_out_topics = serializers.ListField(child=serializers.CharField())


class SegmentExportSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=Segment.Kind.choices)


class TransitionExportSerializer(serializers.Serializer):
    from_stage = serializers.CharField()
    to_stage = serializers.CharField()
    at = serializers.DateTimeField()
    cause = serializers.CharField()


class MergeExportSerializer(serializers.Serializer):
    anonymous_id = serializers.CharField(help_text="The anonymous customer merged into this one.")
    merged_at = serializers.DateTimeField()


class EventExportSerializer(serializers.Serializer):
    name = serializers.CharField()
    properties = serializers.DictField()
    occurred_at = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    event_id = serializers.CharField(allow_null=True, help_text="The sender's id, if any.")


def _profile(customer: Customer) -> dict:
    return CustomerSerializer(customer).data


def _consent(customer: Customer) -> dict:
    topics = TopicOptOut.objects.filter(customer=customer).order_by("topic__key")
    return {"push_opt_out": customer.push_opt_out,
            "opted_out_topics": list(topics.values_list("topic__key", flat=True))}


def _segments(customer: Customer) -> list[dict]:
    """The segments the customer is in now: static by membership, dynamic by their rules (one
    primary key probe per segment; segments whose rules no longer compile are left out)."""
    static = set(SegmentMember.objects.filter(customer=customer).values_list("segment_id",
                                                                              flat=True))
    rows = []
    for segment in Segment.objects.order_by("key"):
        if segment.kind == Segment.Kind.STATIC:
            member = segment.pk in static
        else:
            try:
                member = customers_matching(segment.rules, segment_id=segment.pk).filter(
                    pk=customer.pk).exists()
            except ValidationError:
                member = False
        if member:
            rows.append({"key": segment.key, "name": segment.name, "kind": segment.kind})
    return rows


def _transitions(customer: Customer):
    rows = StageTransition.objects.filter(customer=customer).order_by("at", "pk")
    return rows.values("from_stage", "to_stage", "at", "cause").iterator(chunk_size=EVENTS_CHUNK)


def _merges(customer: Customer):
    merges = CustomerMerge.objects.filter(customer=customer).order_by("merged_at", "pk")
    return ({"anonymous_id": anonymous_id, "merged_at": merged_at}
            for anonymous_id, merged_at in merges.values_list("anonymous_external_id",
                                                              "merged_at"))


def _events(customer: Customer):
    events = Event.objects.filter(customer=customer).order_by("occurred_at", "pk")
    columns = ("name", "properties", "occurred_at", "received_at", "client_event_id")
    return ({"name": name, "properties": properties, "occurred_at": occurred_at,
             "received_at": received_at, "event_id": event_id}
            for name, properties, occurred_at, received_at, event_id
            in events.values_list(*columns).iterator(chunk_size=EVENTS_CHUNK))


def register_sections() -> None:
    """audiences' own sections, first in every export (called from AppConfig.ready())."""
    register_access_section("customer", rows=_profile, schema=CustomerSerializer, many=False)
    register_access_section("consent", rows=_consent, schema=ConsentExportSerializer,
                            many=False)
    register_access_section("segments", rows=_segments, schema=SegmentExportSerializer)
    register_access_section("stage_transitions", rows=_transitions,
                            schema=TransitionExportSerializer)
    register_access_section("merged_customers", rows=_merges, schema=MergeExportSerializer)
    register_access_section("events", rows=_events, schema=EventExportSerializer)


class CustomerDataSerializer(serializers.Serializer):
    """Documents the export: one field per registered section, read when the schema is built
    (after every app registered its sections)."""

    def get_fields(self):
        return {section.name: section.schema(many=section.many) if section.many
                else section.schema()
                for section in access_sections()}

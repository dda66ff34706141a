"""A customer's data export (right of access): every app's section, as documented, streamed."""

import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from audiences.access import access_export, access_sections, register_access_section
from audiences.api.serializers import CustomerSerializer
from audiences.models import Segment
from audiences.services import (
    EventInput,
    events_track,
    segment_create,
    segment_members_replace,
)
from audiences.services_identity import customer_merge
from tests.audiences.identity_kit import (
    broadcast,
    convert,
    enroll,
    journey,
    no_controls,
    person,
    phone,
    track,
)

pytestmark = pytest.mark.django_db


def export_of(customer) -> tuple[dict, list[bytes]]:
    pieces = list(access_export(customer))
    return json.loads(b"".join(pieces)), pieces


@pytest.fixture
def ana():
    no_controls()
    ana = person("ana-1", first_name="Ana", attributes={"city": "Lisbon"})
    phone(ana, "ana-phone")
    track(ana, "app_open", "purchase")
    broadcast(ana)
    convert(enroll(journey(), ana), revenue="12.50")
    static = segment_create(name="VIP", key="vip", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=static, external_ids=["ana-1"])
    segment_create(name="Buyers", key="buyers", rules={"event": {"name": "purchase"}})
    segment_create(name="Sleepers", key="sleepers", rules={"stage": {"in": ["retention"]}})
    customer_merge(external_id="ana-1", anonymous_external_id=person("anon-7").external_id)
    return ana


def test_every_section_holds_the_customers_rows(ana):
    data, _ = export_of(ana)

    assert data["customer"]["attributes"] == {"city": "Lisbon"}
    assert data["consent"] == {"push_opt_out": False, "opted_out_topics": []}
    assert [row["key"] for row in data["segments"]] == ["buyers", "vip"]
    assert [(t["from_stage"], t["to_stage"]) for t in data["stage_transitions"]] == [
        ("awareness", "engagement"), ("engagement", "conversion")]
    assert [row["anonymous_id"] for row in data["merged_customers"]] == ["anon-7"]
    assert [event["name"] for event in data["events"]] == ["app_open", "purchase"]
    assert data["devices"][0]["kind"] == "fcm"
    assert data["deliveries"][0] == {**data["deliveries"][0], "template": "Hello",
                                     "status": "queued"}
    assert data["enrollments"][0]["campaign"] == "Welcome"
    assert data["conversions"][0]["revenue"] == "12.50"


def test_rows_have_exactly_the_documented_fields(ana):
    data, _ = export_of(ana)

    for section in access_sections():
        documented = set(section.schema().fields)
        rows = data[section.name] if section.many else [data[section.name]]
        assert rows, f"{section.name} is empty in this test: it proves nothing"
        for row in rows:
            assert set(row) == documented, section.name


def test_times_are_iso_8601_in_utc_as_the_api_writes_them(ana):
    data, _ = export_of(ana)

    assert data["events"][0]["occurred_at"].endswith("Z")
    assert data["customer"]["created_at"] == CustomerSerializer(ana).data["created_at"]


def test_a_long_history_streams_a_row_per_line(db):
    customer = person("busy")
    events_track(items=[EventInput(name=f"e{n}", customer=customer,
                                   occurred_at=customer.created_at) for n in range(4500)])

    data, pieces = export_of(customer)

    assert len(data["events"]) == 4500
    assert len(pieces) > 4500  # written as read, not built whole
    text = b"".join(pieces).decode()
    assert text.count("\n{") >= 4500


def test_a_section_name_cannot_be_taken_twice():
    with pytest.raises(ImproperlyConfigured):
        register_access_section("events", rows=lambda customer: [], schema=CustomerSerializer)

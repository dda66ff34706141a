"""Segment selectors (count, sample) and services (save, static member upload)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audiences import selectors
from audiences.models import Segment, SegmentMember, Topic
from audiences.selectors import segment_count, segment_customers, segment_sample
from audiences.services import (
    customer_upsert,
    event_track,
    segment_create,
    segment_members_replace,
    segment_save,
)
from notifications.services import device_register

pytestmark = pytest.mark.django_db


def customers(*external_ids):
    return [customer_upsert(external_id=eid)[0] for eid in external_ids]


def members(segment) -> set[str]:
    return set(segment_customers(segment).values_list("external_id", flat=True))


def test_counting_a_dynamic_segment_is_one_query(django_assert_num_queries):
    Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})
    ana, ben, _ = customers("ana", "ben", "cat")
    for days in (1, 2):
        event_track(customer=ana, name="purchase",
                    occurred_at=timezone.now() - timedelta(days=days))
    device_register(customer=ana, kind="fcm", token="fcm-ana", platform="android")
    device_register(customer=ben, kind="fcm", token="fcm-ben", platform="android")
    segment = segment_create(name="Buyers", rules={"all": [
        {"event": {"name": "purchase", "min_count": 2, "within_days": 30}},
        {"consent": {"topic": "offers"}},
        {"device": {"platform": "android"}},
        {"not": {"attribute": {"key": "churned", "op": "eq", "value": True}}},
    ]})

    with django_assert_num_queries(1):
        assert segment_count(segment) == 1


def test_counting_a_static_segment_is_one_query(django_assert_num_queries):
    customers("ana", "ben", "cat")
    segment = segment_create(name="Picked", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=segment, external_ids=["ana", "cat"])

    with django_assert_num_queries(1):
        assert segment_count(segment) == 2


def test_sample_gives_at_most_n_newest_customers():
    customers(*[f"c{i}" for i in range(15)])
    segment = segment_create(name="Everyone", rules={"all": []})

    sample = segment_sample(segment)

    assert [c.external_id for c in sample] == [f"c{i}" for i in range(14, 4, -1)]
    assert len(segment_sample(segment, n=3)) == 3


def test_segment_save_refuses_invalid_rules_and_stores_nothing():
    with pytest.raises(ValidationError) as error:
        segment_create(name="Bad", rules={"all": [{"stgae": {}}]})
    assert error.value.message_dict["rules"][0].startswith("all[0]: unknown rule type 'stgae'")
    assert not Segment.objects.filter(name="Bad").exists()


def test_segment_save_refuses_a_reference_cycle():
    first = segment_create(name="First", rules={"all": []})
    second = segment_create(name="Second", rules={"segment": first.pk})
    first.rules = {"segment": second.pk}
    with pytest.raises(ValidationError, match="refers back to itself"):
        segment_save(segment=first)
    first.refresh_from_db()
    assert first.rules == {"all": []}


def test_a_static_segment_keeps_no_rules():
    segment = segment_create(name="List", kind=Segment.Kind.STATIC, rules={"stgae": {}})
    assert segment.rules == {}


def test_members_replace_sets_exactly_the_listed_customers():
    customers("ana", "ben", "cat")
    segment = segment_create(name="Picked", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=segment, external_ids=["ana", "ben"])

    count = segment_members_replace(segment=segment, external_ids=["cat", "", " ben ", "cat"])

    assert count == 2
    assert members(segment) == {"ben", "cat"}


def test_members_replace_with_unknown_ids_lists_their_lines_and_changes_nothing(monkeypatch):
    monkeypatch.setattr(selectors, "EXTERNAL_ID_CHUNK", 2)  # unknowns after inserted chunks
    customers("ana", "ben", "cat")
    segment = segment_create(name="Picked", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=segment, external_ids=["ana"])

    with pytest.raises(ValidationError) as error:
        segment_members_replace(segment=segment, external_ids=["ben", "", "cat", "nobody", "x"])

    assert error.value.messages == [
        "2 external id(s) match no customer, so nothing was changed. "
        "line 4: 'nobody'; line 5: 'x'."
    ]
    assert members(segment) == {"ana"}


def test_members_replace_lists_the_first_20_unknown_ids_and_counts_the_rest():
    segment = segment_create(name="Picked", kind=Segment.Kind.STATIC)
    with pytest.raises(ValidationError) as error:
        segment_members_replace(segment=segment, external_ids=[f"u{i}" for i in range(1, 26)])
    message = error.value.messages[0]
    assert message.startswith("25 external id(s) match no customer")
    assert "line 20: 'u20'; and 5 more." in message
    assert "u21" not in message


def test_members_replace_refuses_a_dynamic_segment():
    customers("ana")
    segment = segment_create(name="Rules", rules={"all": []})
    with pytest.raises(ValidationError, match="Only a static segment"):
        segment_members_replace(segment=segment, external_ids=["ana"])
    assert not SegmentMember.objects.exists()

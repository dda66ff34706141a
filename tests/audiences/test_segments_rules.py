"""Each segment rule type, matching and not matching, on the configured database."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.utils import timezone

from audiences.models import Customer, Event, Segment, Topic
from audiences.segments import compile_rules
from audiences.selectors import customers_matching
from audiences.services import (
    consent_set,
    customer_upsert,
    event_track,
    segment_create,
    segment_members_replace,
)
from notifications.services import device_register

pytestmark = pytest.mark.django_db


def matched(rules) -> set[str]:
    return set(customers_matching(rules).values_list("external_id", flat=True))


def customer(external_id: str, **fields) -> Customer:
    return customer_upsert(external_id=external_id, **fields)[0]


def days_ago(days: float):
    return timezone.now() - timedelta(days=days)


# --- attribute --------------------------------------------------------------------------------

@pytest.fixture
def people():
    customer("ana", attributes={"city": "Lisbon", "age": 9, "vip": True, "tags": ["food", "pet"]})
    customer("ben", attributes={"city": "Porto", "age": 10, "vip": False, "tags": ["tech"]})
    customer("cat", attributes={"city": "lisbon-north", "age": "10", "score": 2.5})
    customer("dan")  # no attributes at all


def attribute(key, op, value=None) -> dict:
    rule = {"key": key, "op": op}
    if value is not None:
        rule["value"] = value
    return {"attribute": rule}


def test_attribute_eq_matches_the_exact_value_only(people):
    assert matched(attribute("city", "eq", "Lisbon")) == {"ana"}
    assert matched(attribute("city", "eq", "Faro")) == set()


def test_attribute_ne_matches_everyone_else_including_customers_without_the_key(people):
    assert matched(attribute("city", "ne", "Lisbon")) == {"ben", "cat", "dan"}


def test_attribute_numbers_compare_as_numbers_and_strings_never_match_a_number(people):
    # 9 < 10 as numbers (as text "9" > "10"); cat's "10" is a string, so not a number.
    assert matched(attribute("age", "lt", 10)) == {"ana"}
    assert matched(attribute("age", "gte", 10)) == {"ben"}
    assert matched(attribute("age", "gt", 8)) == {"ana", "ben"}
    assert matched(attribute("age", "lte", 9)) == {"ana"}
    assert matched(attribute("score", "gt", 2)) == {"cat"}
    assert matched(attribute("age", "eq", "10")) == {"cat"}


def test_attribute_true_is_not_the_number_one(people):
    customer("eve", attributes={"vip": 1})
    assert matched(attribute("vip", "eq", True)) == {"ana"}
    assert matched(attribute("vip", "eq", False)) == {"ben"}


def test_attribute_contains_is_a_case_insensitive_substring_of_a_string(people):
    assert matched(attribute("city", "contains", "LISBON")) == {"ana", "cat"}
    assert matched(attribute("city", "contains", "%")) == set()  # a literal %, not a wildcard


def test_attribute_contains_on_a_list_looks_for_an_equal_element(people):
    assert matched(attribute("tags", "contains", "food")) == {"ana"}
    assert matched(attribute("tags", "contains", "foo")) == set()  # elements, not substrings


def test_attribute_exists_and_not_exists(people):
    assert matched(attribute("score", "exists")) == {"cat"}
    assert matched(attribute("score", "not_exists")) == {"ana", "ben", "dan"}


def test_not_of_an_attribute_rule_includes_customers_without_the_key(people):
    # A NULL from a missing key must not drop dan from the negation.
    assert matched({"not": attribute("age", "gt", 9)}) == {"ana", "cat", "dan"}


# --- groups -----------------------------------------------------------------------------------

def test_empty_all_matches_everyone_and_its_negation_no_one(people):
    assert matched({"all": []}) == {"ana", "ben", "cat", "dan"}
    assert matched({"not": {"all": []}}) == set()


def test_nested_all_any_not(people):
    rules = {"all": [
        {"any": [attribute("city", "eq", "Lisbon"), attribute("city", "eq", "Porto")]},
        {"not": attribute("vip", "eq", False)},
    ]}
    assert matched(rules) == {"ana"}
    assert matched({"any": [rules, attribute("score", "exists")]}) == {"ana", "cat"}


# --- stage, bucket, last_seen, profile --------------------------------------------------------

def test_stage_in(people):
    Customer.objects.filter(external_id__in=["ana", "ben"]).update(stage="conversion")
    Customer.objects.filter(external_id="cat").update(stage="retention")
    assert matched({"stage": {"in": ["conversion", "advocacy"]}}) == {"ana", "ben"}
    assert matched({"stage": {"in": ["advocacy"]}}) == set()


def test_bucket_range_is_inclusive(people):
    for external_id, bucket in (("ana", 0), ("ben", 999), ("cat", 1000), ("dan", 9999)):
        Customer.objects.filter(external_id=external_id).update(bucket=bucket)
    assert matched({"bucket": {"min": 0, "max": 999}}) == {"ana", "ben"}
    assert matched({"bucket": {"min": 1000}}) == {"cat", "dan"}
    assert matched({"bucket": {"max": 0}}) == {"ana"}


def test_last_seen_within_more_than_and_never():
    for external_id, seen in (("recent", days_ago(2)), ("old", days_ago(40)), ("never", None)):
        customer(external_id)
        Customer.objects.filter(external_id=external_id).update(last_seen_at=seen)
    assert matched({"last_seen": {"within_days": 7}}) == {"recent"}
    assert matched({"last_seen": {"more_than_days_ago": 30}}) == {"old"}
    assert matched({"last_seen": {"never": True}}) == {"never"}
    assert matched({"not": {"last_seen": {"within_days": 7}}}) == {"old", "never"}


def test_profile_fields():
    customer("ana", email="Ana@Example.com", locale="pt-PT", first_name="Ana")
    customer("ben", locale="en")
    assert matched({"profile": {"field": "email", "op": "eq", "value": "ana@example.com"}}) == {
        "ana"}
    assert matched({"profile": {"field": "locale", "op": "contains", "value": "pt"}}) == {"ana"}
    assert matched({"profile": {"field": "locale", "op": "ne", "value": "en"}}) == {"ana"}
    assert matched({"profile": {"field": "first_name", "op": "exists"}}) == {"ana"}
    assert matched({"profile": {"field": "external_id", "op": "eq", "value": "ben"}}) == {"ben"}


# --- event ------------------------------------------------------------------------------------

@pytest.fixture
def shoppers():
    ana, ben, cat = customer("ana"), customer("ben"), customer("cat")
    for when in (days_ago(1), days_ago(5)):
        event_track(customer=ana, name="purchase", occurred_at=when,
                    properties={"category": "food", "total": 12})
    event_track(customer=ben, name="purchase", occurred_at=days_ago(3),
                properties={"category": "books"})
    event_track(customer=ben, name="purchase", occurred_at=days_ago(60),
                properties={"category": "food"})
    event_track(customer=cat, name="app_open", occurred_at=days_ago(1))


def test_event_performed_ever(shoppers):
    assert matched({"event": {"name": "purchase"}}) == {"ana", "ben"}


def test_event_min_count_within_window(shoppers):
    assert matched({"event": {"name": "purchase", "min_count": 2}}) == {"ana", "ben"}
    assert matched({"event": {"name": "purchase", "min_count": 2, "within_days": 30}}) == {"ana"}
    assert matched({"event": {"name": "purchase", "min_count": 3}}) == set()


def test_event_where_matches_property_values(shoppers):
    assert matched({"event": {"name": "purchase", "where": {"category": "food"}}}) == {
        "ana", "ben"}
    food_lately = {"name": "purchase", "within_days": 30, "where": {"category": "food"}}
    assert matched({"event": food_lately}) == {"ana"}
    assert matched({"event": {"name": "purchase", "where": {"total": 12}}}) == {"ana"}
    assert matched({"event": {"name": "purchase", "where": {"total": "12"}}}) == set()


def test_event_not_performed_includes_customers_with_no_events(shoppers):
    rule = {"name": "purchase", "min_count": 2, "within_days": 30, "performed": False}
    assert matched({"event": rule}) == {"ben", "cat"}
    assert matched({"event": {"name": "purchase", "performed": False}}) == {"cat"}


def test_not_of_an_event_count_rule_is_its_complement(shoppers):
    twice = {"event": {"name": "purchase", "min_count": 2, "within_days": 30}}
    assert matched({"not": twice}) == {"ben", "cat"}


def test_event_count_rules_compose_inside_other_queries(shoppers):
    # Campaigns embed audiences in their own queries: as pk__in and as a correlated EXISTS.
    rules = {"any": [{"event": {"name": "purchase", "min_count": 2, "within_days": 30}},
                     {"profile": {"field": "external_id", "op": "eq", "value": "cat"}}]}
    inner = customers_matching(rules)
    in_subquery = Customer.objects.filter(pk__in=inner.values("pk"))
    correlated = Event.objects.filter(Exists(inner.filter(pk=OuterRef("customer_id"))))
    assert set(in_subquery.values_list("external_id", flat=True)) == {"ana", "cat"}
    assert set(correlated.values_list("customer__external_id", flat=True)) == {"ana", "cat"}


# --- consent ----------------------------------------------------------------------------------

def test_consent_topic_excludes_topic_and_global_opt_outs():
    Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})
    customer("yes")
    customer("topic_no", opted_out_topics=["offers"])
    customer("all_no", push_opt_out=True)
    assert matched({"consent": {"topic": "offers"}}) == {"yes"}
    assert matched({"consent": {"push": True}}) == {"yes", "topic_no"}
    assert matched({"not": {"consent": {"topic": "offers"}}}) == {"topic_no", "all_no"}


def test_consent_follows_later_changes():
    Topic.objects.get_or_create(key="offers", defaults={"name": "Offers"})
    ana = customer("ana", opted_out_topics=["offers"])
    consent_set(customer=ana, opted_out_topics=[])
    assert matched({"consent": {"topic": "offers"}}) == {"ana"}


def test_consent_on_a_deleted_topic_matches_no_one():
    topic, _ = Topic.objects.get_or_create(key="gone", defaults={"name": "Gone"})
    customer("ana")
    topic.delete()
    assert matched({"consent": {"topic": "gone"}}) == set()


# --- device (registered by notifications) -----------------------------------------------------

def test_device_rule_filters_by_kind_platform_environment_and_reachability():
    ios, web, denied, inactive = customer("ios"), customer("web"), customer("denied"), customer(
        "inactive")
    customer("none")
    device_register(customer=ios, kind="apns", token="a" * 64, platform="ios",
                    environment="sandbox")
    device_register(customer=web, kind="fcm", token="fcm-web", platform="web")
    device_register(customer=denied, kind="fcm", token="fcm-denied", platform="android",
                    permission="denied")
    device, _ = device_register(customer=inactive, kind="fcm", token="fcm-old", platform="android")
    device.is_active = False
    device.save(update_fields=["is_active"])

    assert matched({"device": {}}) == {"ios", "web"}
    assert matched({"device": {"kind": "fcm"}}) == {"web"}
    assert matched({"device": {"platform": "ios", "environment": "sandbox"}}) == {"ios"}
    assert matched({"device": {"platform": "ios", "environment": "production"}}) == set()
    assert matched({"not": {"device": {}}}) == {"denied", "inactive", "none"}


# --- segment references -----------------------------------------------------------------------

def test_segment_reference_to_a_dynamic_segment_inlines_its_rules(people):
    lisbon = segment_create(name="Lisbon", rules={"attribute": {"key": "city", "op": "contains",
                                                                 "value": "lisbon"}})
    assert matched({"all": [{"segment": lisbon.pk}, attribute("age", "lt", 10)]}) == {"ana"}
    assert matched({"not": {"segment": lisbon.pk}}) == {"ben", "dan"}


def test_segment_reference_to_a_static_segment_uses_its_members(people):
    static = segment_create(name="Picked", kind=Segment.Kind.STATIC)
    segment_members_replace(segment=static, external_ids=["ben", "dan"])
    assert matched({"segment": static.pk}) == {"ben", "dan"}
    assert matched({"not": {"segment": static.pk}}) == {"ana", "cat"}


def test_segment_reference_cycle_is_refused(people):
    first = segment_create(name="First", rules={"all": []})
    second = segment_create(name="Second", rules={"segment": first.pk})
    first.rules = {"any": [{"stage": {"in": ["advocacy"]}}, {"segment": second.pk}]}
    with pytest.raises(ValidationError) as error:
        compile_rules(first.rules, segment_id=first.pk)
    message = error.value.messages[0]
    assert message.startswith(f"any[1].segment({second.pk}).segment: ")
    assert f"cycle: {first.pk} → {second.pk} → {first.pk}" in message


def test_segment_referring_to_itself_is_refused():
    own = segment_create(name="Own", rules={"all": []})
    with pytest.raises(ValidationError, match=r"segment: segment \d+ refers back to itself"):
        compile_rules({"segment": own.pk}, segment_id=own.pk)

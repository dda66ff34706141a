"""Every mistake in segment rules is a ValidationError that names the rule by its path."""

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Q

from audiences.models import Segment
from audiences.segments import compile_rules, register_rule, validate_rules
from audiences.selectors import customers_matching

pytestmark = pytest.mark.django_db

KNOWN = ("all, any, not, attribute, bucket, consent, device, event, last_seen, profile, "
         "segment, stage")


def errors_of(rules, **kwargs) -> list[str]:
    with pytest.raises(ValidationError) as error:
        validate_rules(rules, **kwargs)
    return error.value.messages


@pytest.mark.parametrize(("rules", "message"), [
    ([], "rules: a rule is an object with exactly one key naming its type"),
    ({"stage": {"in": ["engagement"]}, "bucket": {"min": 1}},
     "rules: a rule is an object with exactly one key naming its type"),
    ({"any": [{"stgae": {}}]}, f"any[0]: unknown rule type 'stgae' (known: {KNOWN})"),
    ({"all": {}}, "all: must be a list of rules"),
    ({"any": []}, "any: must list at least one rule"),
    ({"not": "stage"}, "not: a rule is an object with exactly one key"),
    ({"event": {"name": "purchase", "min": 2}},
     "event: unknown key 'min' (allowed: name, min_count, within_days, where, performed)"),
    ({"event": {}}, "event: missing key 'name'"),
    ({"event": "purchase"}, "event: must be an object with keys: name, min_count"),
    ({"all": [{"stage": {"in": ["engagement"]}}, {"stage": {"in": ["advocacy"]}},
              {"event": {"name": "purchase", "min_count": 0}}]},
     "all[2].event.min_count: must be a positive integer"),
    ({"event": {"name": "purchase", "min_count": True}},
     "event.min_count: must be a positive integer"),
    ({"not": {"event": {"name": "purchase", "within_days": 10**9}}},
     "not.event.within_days: must be a positive integer up to 36500"),
    ({"event": {"name": ""}}, "event.name: must be a non-empty string"),
    ({"event": {"name": "purchase", "where": []}}, "event.where: must be an object of property"),
    ({"event": {"name": "purchase", "where": {"category": ["food"]}}},
     "event.where.category: must be a string, a number or true/false"),
    ({"event": {"name": "purchase", "performed": "no"}}, "event.performed: must be true or false"),
    ({"attribute": {"key": "city", "op": "like", "value": "x"}},
     "attribute.op: 'like' is not one of: eq, ne, lt, gt, lte, gte, contains, exists, not_exists"),
    ({"attribute": {"key": "city", "op": "eq"}},
     "attribute: missing key 'value' (op 'eq' compares with it)"),
    ({"attribute": {"key": "city", "op": "exists", "value": 1}},
     "attribute.value: takes no value with op 'exists'"),
    ({"attribute": {"key": "vip", "op": "gt", "value": True}},
     "attribute.value: op 'gt' compares numbers or strings, not true/false"),
    ({"attribute": {"key": "tags", "op": "eq", "value": ["a"]}},
     "attribute.value: must be a string, a number or true/false"),
    ({"attribute": {"key": "score", "op": "gt", "value": float("inf")}},
     "attribute.value: Numbers must be finite (no Infinity or NaN, nor one too large to hold)."),
    ({"attribute": {"key": 'say "hi"', "op": "exists"}},
     "attribute.key: must be a key name of 1 to 100 characters"),
    ({"stage": {"in": []}}, "stage.in: must be a non-empty list of stages"),
    ({"stage": {"in": ["engagement", "sleeping"]}}, "stage.in[1]: unknown stage 'sleeping'"),
    ({"last_seen": {"within_days": 7, "never": True}},
     "last_seen: give exactly one of: within_days, more_than_days_ago, never"),
    ({"last_seen": {"more_than_days_ago": -1}},
     "last_seen.more_than_days_ago: must be a positive integer"),
    ({"consent": {}}, "consent: give exactly one of: topic, push"),
    ({"consent": {"topic": "nope"}}, "consent.topic: unknown topic 'nope'"),
    ({"bucket": {}}, "bucket: give min, max or both"),
    ({"bucket": {"min": 5, "max": 1}}, "bucket: min (5) is above max (1)"),
    ({"bucket": {"max": 10000}}, "bucket.max: must be an integer from 0 up to 9999"),
    ({"profile": {"field": "phone", "op": "eq", "value": "1"}},
     "profile.field: 'phone' is not one of: locale, time_zone, email"),
    ({"profile": {"field": "email", "op": "exists", "value": "x"}},
     "profile.value: takes no value with op 'exists'"),
    ({"segment": "vip"}, "segment: no segment with key 'vip'"),
    ({"segment": 1.5}, "segment: must be a segment key or id (a positive integer)"),
    ({"segment": 987654}, "segment: no segment with id 987654"),
    ({"device": {"kind": "sms"}}, "device.kind: 'sms' is not one of: apns, fcm, webpush"),
    ({"device": {"os": "ios"}}, "device: unknown key 'os' (allowed: kind, platform, environment)"),
])
def test_invalid_rules_name_the_rule_by_path(rules, message):
    messages = errors_of(rules)
    assert len(messages) == 1
    assert messages[0].startswith(message)


def test_all_mistakes_are_reported_at_once():
    rules = {"all": [
        {"stgae": {}}, {"any": [{"bucket": {"min": -1}}]}, {"stage": {"in": ["awareness"]}},
    ]}
    assert errors_of(rules) == [
        f"all[0]: unknown rule type 'stgae' (known: {KNOWN})",
        "all[1].any[0].bucket.min: must be an integer from 0 up to 9999",
    ]


def test_too_deep_nesting_is_refused():
    rules = {"all": []}
    for _ in range(20):
        rules = {"not": rules}
    assert "nest deeper than 12 levels" in errors_of(rules)[0]


def test_a_referenced_segment_with_broken_rules_is_reported_with_its_id():
    # Saved past validation (e.g. an old rule type); the reference names the inner path.
    broken = Segment.objects.create(name="Broken", rules={"stage": {"in": ["sleeping"]}})
    assert errors_of({"segment": broken.pk})[0].startswith(
        f"segment({broken.pk}).stage.in[0]: unknown stage 'sleeping'"
    )


def test_compiling_validates_first():
    with pytest.raises(ValidationError, match="event.min_count: must be a positive integer"):
        compile_rules({"event": {"name": "purchase", "min_count": "2"}})
    with pytest.raises(ValidationError, match="unknown rule type"):
        customers_matching({"stgae": {}})


def test_valid_rules_pass():
    validate_rules({"all": [
        {"stage": {"in": ["engagement", "conversion"]}},
        {"event": {"name": "purchase", "min_count": 2, "within_days": 30,
                   "where": {"category": "food"}, "performed": True}},
        {"not": {"last_seen": {"more_than_days_ago": 30}}},
        {"consent": {"push": True}},
        {"bucket": {"min": 0, "max": 999}},
        {"device": {"kind": "fcm", "platform": "android"}},
    ]})


def test_rule_type_names_cannot_be_taken_twice():
    with pytest.raises(ImproperlyConfigured, match="'stage' is already taken"):
        register_rule("stage")(lambda spec, ctx: Q())
    with pytest.raises(ImproperlyConfigured, match="'all' is already taken"):
        register_rule("all")(lambda spec, ctx: Q())

"""What the builders offer as you type: known event names, attribute keys and their common
values, topics, stages and segment keys.

Suggestions are hints, not facts, so they read bounded recent samples instead of whole tables:
the newest events and customers, by primary key (an index range, whatever the table size)."""

from collections import Counter

from django.db.models import Max

from audiences.models import Customer, Event, Segment, Stage, Topic

EVENT_SAMPLE = 50_000  # newest events read for their names: one index range scan
CUSTOMER_SAMPLE = 2_000  # newest customers read for attribute keys and values (bounded memory)
MAX_SUGGESTIONS = 200
MAX_VALUES = 20


def event_names() -> list[str]:
    """Names of recent events, most frequent first, then by name."""
    newest = Event.objects.aggregate(top=Max("pk"))["top"]
    if newest is None:
        return []
    rows = (Event.objects.filter(pk__gt=newest - EVENT_SAMPLE).values_list("name")
            .order_by().distinct()[:MAX_SUGGESTIONS])
    return sorted(name for (name,) in rows)


def _recent_attributes() -> list[dict]:
    rows = Customer.objects.order_by("-pk").values_list("attributes", flat=True)
    return [row for row in rows[:CUSTOMER_SAMPLE] if isinstance(row, dict)]


def attribute_keys() -> list[str]:
    counts = Counter(key for attributes in _recent_attributes() for key in attributes)
    return [key for key, _ in counts.most_common(MAX_SUGGESTIONS)]


def attribute_values(key: str) -> list:
    """The commonest scalar values of one attribute among recent customers."""
    counts = Counter()
    for attributes in _recent_attributes():
        value = attributes.get(key)
        if isinstance(value, str | int | float | bool) and value != "":
            counts[(type(value).__name__, value)] += 1
    return [value for (_, value), _ in counts.most_common(MAX_VALUES)]


def rule_suggestions() -> dict:
    """Everything the visual rules editor offers at once (attribute values come per key)."""
    return {
        "events": event_names(),
        "attributes": attribute_keys(),
        "topics": list(Topic.objects.order_by("key").values_list("key", flat=True)
                       [:MAX_SUGGESTIONS]),
        "segments": list(Segment.objects.order_by("key").values_list("key", flat=True)
                         [:MAX_SUGGESTIONS]),
        "stages": [{"value": value, "label": label} for value, label in Stage.choices],
    }

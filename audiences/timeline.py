"""A customer's timeline: everything that happened to them, newest first, a page at a time.

Sources each give their own kind of item (events and stage moves here; apps above add
theirs, e.g. enrollments and messages, with ``timeline_source_add``, so this module imports
nothing from them). Pages are keyset pages on (time, kind, id): each source reads at most one
page of its newest rows before the cursor by an index on (customer, time), so a customer with
thousands of events costs the same as one with ten."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.dateparse import parse_datetime

from audiences.models import Event, StageTransition

PAGE_SIZE = 50


@dataclass(frozen=True)
class Cursor:
    at: datetime
    kind: str
    id: int

    def __str__(self) -> str:
        return f"{self.at.isoformat()}|{self.kind}|{self.id}"

    @classmethod
    def parse(cls, text: str) -> "Cursor":
        """The cursor in a page's link; a hand-edited one is a ValidationError."""
        try:
            at, kind, pk = text.split("|")
            when = parse_datetime(at)
            if when is None or not kind:
                raise ValueError(text)
            return cls(when, kind, int(pk))
        except ValueError:
            raise ValidationError("That timeline page does not exist.") from None


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # "event", "stage", "enrollment", "message", ...
    id: int
    title: str
    detail: str = ""
    status: str = ""  # a word for styling: sent, skipped, failed, opened, goal...
    url: str = ""  # the row's own admin page, when it has one
    campaign: str = ""
    campaign_url: str = ""

    @property
    def key(self) -> tuple:
        return (self.at, self.kind, self.id)


TimelineSource = Callable[[int, Cursor | None, int], list[TimelineItem]]
_SOURCES: list[TimelineSource] = []


def timeline_source_add(source: TimelineSource) -> None:
    if source not in _SOURCES:
        _SOURCES.append(source)


def before(cursor: Cursor | None, kind: str, at_field: str, id_field: str = "pk") -> Q:
    """Rows of ``kind`` that come after ``cursor`` going back in time: (at, kind, id) below
    the cursor's."""
    if cursor is None:
        return Q()
    older = Q(**{f"{at_field}__lt": cursor.at})
    if kind < cursor.kind:
        return older | Q(**{at_field: cursor.at})
    if kind == cursor.kind:
        return older | Q(**{at_field: cursor.at, f"{id_field}__lt": cursor.id})
    return older


def customer_timeline(*, customer_id: int, cursor: Cursor | None = None,
                      limit: int | None = None) -> tuple[list[TimelineItem], Cursor | None]:
    """One page of the customer's timeline, newest first, and the cursor of the next page
    (None on the last)."""
    limit = limit or PAGE_SIZE
    items = [item for source in _SOURCES for item in source(customer_id, cursor, limit + 1)]
    items.sort(key=lambda item: item.key, reverse=True)
    page = items[:limit]
    more = len(items) > limit
    return page, (Cursor(*page[-1].key) if more and page else None)


def _events(customer_id: int, cursor: Cursor | None, limit: int) -> list[TimelineItem]:
    rows = (Event.objects.filter(before(cursor, "event", "occurred_at"), customer_id=customer_id)
            .order_by("-occurred_at", "-pk")[:limit])
    return [TimelineItem(e.occurred_at, "event", e.pk, f"Event: {e.name}",
                         detail=_properties(e.properties), status="event") for e in rows]


def _properties(properties) -> str:
    if not isinstance(properties, dict) or not properties:
        return ""
    shown = ", ".join(f"{key}: {value}" for key, value in list(properties.items())[:6])
    return shown if len(properties) <= 6 else f"{shown}, …"


def _stage_moves(customer_id: int, cursor: Cursor | None, limit: int) -> list[TimelineItem]:
    rows = (StageTransition.objects.filter(before(cursor, "stage", "at"),
                                           customer_id=customer_id)
            .order_by("-at", "-pk")[:limit])
    return [TimelineItem(t.at, "stage", t.pk, f"Stage: {t.from_stage or 'new'} → {t.to_stage}",
                         detail=t.cause, status="stage") for t in rows]


timeline_source_add(_events)
timeline_source_add(_stage_moves)

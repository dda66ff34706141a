"""Reads shared by the admin, the API, campaigns and reports."""

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import PROTECT, QuerySet

from audiences.models import Customer, Segment, SegmentMember
from audiences.segments import compile_rules, segment_references

USERS_NAMED = 5  # rows named per kind when a segment in use cannot be deleted
EXTERNAL_ID_CHUNK = 5000  # ids looked up per query: well under SQLite's 32766 parameters
UNKNOWN_IDS_SHOWN = 20  # unknown ids listed in an upload error; the rest are only counted


def customers_matching(rules: Any, *, segment_id: int | None = None) -> QuerySet[Customer]:
    """Customers matching segment rules, as one lazy query. Raises ValidationError if the rules
    are invalid. ``segment_id``: the segment these rules belong to (a reference back to it is a
    cycle)."""
    return Customer.objects.filter(compile_rules(rules, segment_id=segment_id))


def segment_customers(segment: Segment) -> QuerySet[Customer]:
    """A static segment's members, or the customers a dynamic segment's rules match now."""
    if segment.kind == Segment.Kind.STATIC:
        members = SegmentMember.objects.filter(segment=segment).values("customer_id")
        return Customer.objects.filter(pk__in=members)
    return customers_matching(segment.rules, segment_id=segment.pk)


def segment_count(segment: Segment) -> int:
    """How many customers are in the segment: one COUNT query."""
    if segment.kind == Segment.Kind.STATIC:
        return SegmentMember.objects.filter(segment=segment).count()
    return segment_customers(segment).count()


def segment_sample(segment: Segment, n: int = 10) -> list[Customer]:
    """A few members to eyeball, newest customers first (walks the primary key index)."""
    return list(segment_customers(segment).order_by("-pk")[:n])


def segment_members_page(segment: Segment, *, after: int | None, limit: int) -> list[Customer]:
    """Up to ``limit`` members in customer id order, after the customer id ``after``: a keyset
    page, as cheap on the last page of a million members as on the first."""
    customers = segment_customers(segment)
    if after is not None:
        customers = customers.filter(pk__gt=after)
    return list(customers.order_by("pk")[:limit])


def segment_referrers(segment: Segment, *, names: set[str | int] | None = None
                      ) -> list[Segment]:
    """The other dynamic segments whose rules name this one: by its key or its id, or by one
    of ``names``. Reads every dynamic segment's rules: there are hundreds, not millions."""
    names = names if names is not None else {segment.key, segment.pk}
    others = Segment.objects.filter(kind=Segment.Kind.DYNAMIC).exclude(pk=segment.pk)
    return [other for other in others.order_by("name").only("pk", "name", "rules")
            if segment_references(other.rules) & names]


def segment_key_change_problem(segment: Segment, key: str) -> str | None:
    """Why the segment may not take ``key`` now: other segments' rules name it by its stored
    key, and would stop compiling. None when it may."""
    if segment.pk is None:
        return None
    stored = Segment.objects.filter(pk=segment.pk).values_list("key", flat=True).first()
    if stored in (None, key):
        return None
    by_key = [repr(other.name) for other in segment_referrers(segment, names={stored})]
    if not by_key:
        return None
    named = ", ".join(by_key[:USERS_NAMED]) + (" and more" if len(by_key) > USERS_NAMED else "")
    return (f"The rules of {named} name this segment by its key {stored!r}: change them first "
            "(or make them name it by id).")


def segment_users(segment: Segment) -> list[str]:
    """What points at this segment and keeps it from being deleted: campaigns, their steps,
    sends. Found through the relations upper apps declared with PROTECT (audiences does not
    import them), a few named per kind."""
    users = []
    for relation in relations_to(Segment):
        if relation.on_delete is not PROTECT:
            continue
        rows = relation.related_model._base_manager.filter(**{relation.field.name: segment})
        named = list(rows.order_by("-pk")[:USERS_NAMED + 1])
        users += [f"{relation.related_model._meta.verbose_name} {row}" for row in named]
    return users


def relations_to(model) -> list:
    """Every foreign key (of any app) to ``model``, as reverse relations, hidden ones
    (related_name="+") included: what Django's own delete would visit."""
    return [field for field in model._meta.get_fields(include_hidden=True)
            if field.auto_created and not field.concrete
            and (field.one_to_many or field.one_to_one)]


def external_ids_resolve(
    external_ids: Iterable[str],
) -> Iterator[tuple[dict[str, int], list[tuple[int, str]]]]:
    """Look external ids up in chunks, with bounded memory.

    ``external_ids`` holds one entry per line of the source (1-based line numbers); blank
    entries are skipped but counted, so reported lines match the file. Yields, per chunk,
    ({external_id: customer pk} for the known ones, [(line, external_id)] for the unknown)."""
    numbered = ((line, eid.strip()) for line, eid in enumerate(external_ids, start=1))
    wanted = ((line, eid) for line, eid in numbered if eid)
    while chunk := list(islice(wanted, EXTERNAL_ID_CHUNK)):
        ids = {eid for _, eid in chunk}
        known = dict(
            Customer.objects.filter(external_id__in=ids).values_list("external_id", "pk")
        )
        yield known, [(line, eid) for line, eid in chunk if eid not in known]


class UnknownExternalIds:
    """Collects external ids that name no customer and reports them as one ValidationError:
    how many, and the first UNKNOWN_IDS_SHOWN with their line numbers."""

    def __init__(self) -> None:
        self.total, self.first = 0, []

    def add(self, unknown: list[tuple[int, str]]) -> None:
        self.total += len(unknown)
        self.first.extend(unknown[: UNKNOWN_IDS_SHOWN - len(self.first)])

    def raise_if_any(self) -> None:
        if not self.total:
            return
        listed = "; ".join(f"line {line}: {eid!r}" for line, eid in self.first)
        more = f"; and {self.total - len(self.first)} more" if self.total > len(self.first) else ""
        raise ValidationError(
            f"{self.total} external id(s) match no customer, so nothing was changed. "
            f"{listed}{more}."
        )


def external_ids_check(external_ids: Iterable[str]) -> None:
    """Raise ValidationError if any entry names no customer (see UnknownExternalIds)."""
    unknown = UnknownExternalIds()
    for _, missing in external_ids_resolve(external_ids):
        unknown.add(missing)
    unknown.raise_if_any()

"""Writes on customers, events and consent. Keyword-only arguments, one transaction each."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from audiences.models import (
    Customer,
    Event,
    StageTransition,
    Topic,
    TopicOptOut,
    customer_bucket,
)
from audiences.signals import event_tracked
from audiences.stages import stage_rules_apply_to_events

CUSTOMER_TOKEN_SALT = "journeyhub.customer-token"
# An active customer's events would otherwise rewrite their row (and its nine indexes) on every
# batch; inactivity rules and segments count in days, so a minute is invisible to them.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
REFERRAL_SIGNUP_EVENT = "referral_signup"  # recorded on the referrer when a referee signs up
REFERRAL_LINK_OPENED_EVENT = "referral_link_opened"  # on the referrer, once per opener
# On the referrer, once per referee: the referee's first move into the conversion stage.
REFERRAL_CONVERTED_EVENT = "referral_converted"
CUSTOMER_FIELDS = (
    "first_name", "last_name", "email", "locale", "time_zone", "attributes", "push_opt_out",
)


@transaction.atomic
def customer_upsert(*, external_id: str, **fields) -> tuple[Customer, bool]:
    """Create or update a customer by external id. Returns (customer, created).

    Only the given fields change; ``attributes`` are merged key by key (a None value deletes the
    key), so a backend can send just what changed."""
    unknown = set(fields) - set(CUSTOMER_FIELDS) - {"opted_out_topics", "referred_by_code"}
    if unknown:
        raise TypeError(f"customer_upsert() got unknown fields: {sorted(unknown)}")
    opted_out_topics = fields.pop("opted_out_topics", None)
    referred_by_code = fields.pop("referred_by_code", None)
    customer, created = customer_get_or_create_locked(external_id)
    attributes = fields.pop("attributes", None)
    if attributes is not None:
        merged = {**customer.attributes, **attributes}
        customer.attributes = {key: value for key, value in merged.items() if value is not None}
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.full_clean(validate_unique=False)
    customer.save()
    if opted_out_topics is not None:
        consent_set(customer=customer, opted_out_topics=opted_out_topics)
    if referred_by_code:
        referral_record(customer=customer, referral_code=referred_by_code)
    return customer, created


def referral_record(*, customer: Customer, referral_code: str) -> Customer | None:
    """Link a customer to the referrer whose code they signed up with, and record a
    REFERRAL_SIGNUP_EVENT on the referrer (a goal or trigger for advocacy journeys).

    The first referrer wins: a customer already referred keeps their referrer and nothing is
    recorded again. Returns the referrer, or None when nothing changed."""
    referrer = Customer.objects.filter(referral_code=referral_code.strip().upper()).first()
    if referrer is None:
        raise ValidationError({"referred_by_code": "No customer has this referral code."})
    if referrer.pk == customer.pk:
        raise ValidationError({"referred_by_code": "A customer cannot refer themselves."})
    if customer.referred_by_id is not None:
        return None
    Customer.objects.filter(pk=customer.pk).update(referred_by=referrer)
    customer.referred_by = referrer
    event_track(customer=referrer, name=REFERRAL_SIGNUP_EVENT,
                properties={"referred_customer": customer.external_id},
                client_event_id=f"referral:{customer.external_id}")
    return referrer


def referral_link_opened_record(*, customer: Customer, referral_code: str) -> "EventResult":
    """``customer`` (the app's, known or anonymous) opened the referral link holding
    ``referral_code``: record REFERRAL_LINK_OPENED_EVENT on its owner, once per opener."""
    referrer = Customer.objects.filter(referral_code=referral_code.strip().upper()).first()
    if referrer is None:
        raise ValidationError({"code": "No customer has this referral code."})
    if referrer.pk == customer.pk:
        raise ValidationError({"code": "This is the customer's own referral link."})
    return event_track(customer=referrer, name=REFERRAL_LINK_OPENED_EVENT,
                       properties={"opened_by": customer.external_id},
                       client_event_id=f"referral-link:{customer.external_id}")


def referral_converted_record(*, customer_id: int, transition_id: int | None) -> bool:
    """A customer moved into the conversion stage: when someone referred them, record
    REFERRAL_CONVERTED_EVENT on the referrer with the revenue of the event that moved them
    (its settings.REFERRAL_REVENUE_PROPERTY), the first time only. Returns whether recorded."""
    customer = Customer.objects.filter(pk=customer_id).select_related("referred_by").first()
    if customer is None or customer.referred_by is None:
        return False
    transition = StageTransition.objects.filter(pk=transition_id).select_related("event").first()
    properties = transition.event.properties if transition and transition.event else {}
    revenue = _revenue(properties.get(settings.REFERRAL_REVENUE_PROPERTY))
    result = event_track(customer=customer.referred_by, name=REFERRAL_CONVERTED_EVENT,
                         properties={"referred_customer": customer.external_id,
                                     "revenue": revenue},
                         client_event_id=f"referral-converted:{customer.external_id}")
    return result.status == "created"


def _revenue(value) -> float:
    try:
        return round(float(value), 2) if value is not None else 0.0
    except (TypeError, ValueError):
        return 0.0


def customer_get_or_create_locked(external_id: str) -> tuple[Customer, bool]:
    """The customer with this external id, created if new, locked for this transaction."""
    customer = Customer.objects.select_for_update().filter(external_id=external_id).first()
    if customer:
        return customer, False
    try:
        with transaction.atomic():
            return Customer.objects.create(external_id=external_id), True
    except IntegrityError:  # created by a concurrent request a moment ago
        return Customer.objects.select_for_update().get(external_id=external_id), False


@transaction.atomic
def consent_set(*, customer: Customer, opted_out_topics: Sequence[str],
                push_opt_out: bool | None = None) -> Customer:
    """Replace the customer's topic opt-outs with exactly ``opted_out_topics`` (topic keys)."""
    topics = {topic.key: topic for topic in Topic.objects.filter(key__in=opted_out_topics)}
    missing = sorted(set(opted_out_topics) - set(topics))
    if missing:
        raise ValidationError({"opted_out_topics": f"Unknown topics: {', '.join(missing)}."})
    TopicOptOut.objects.filter(customer=customer).exclude(topic__key__in=topics).delete()
    TopicOptOut.objects.bulk_create(
        [TopicOptOut(customer=customer, topic=topic) for topic in topics.values()],
        ignore_conflicts=True,
    )
    if push_opt_out is not None and push_opt_out != customer.push_opt_out:
        customer.push_opt_out = push_opt_out
        customer.save(update_fields=["push_opt_out", "updated_at"])
    return customer


@dataclass
class EventInput:
    """One event to track; ``customer_external_id`` or ``customer`` names its customer."""

    name: str
    occurred_at: datetime
    properties: dict = field(default_factory=dict)
    client_event_id: str | None = None
    customer_external_id: str | None = None
    customer: Customer | None = None


@dataclass
class EventResult:
    status: str  # "created" or "duplicate"
    event: Event


@transaction.atomic
def events_track(
    *, items: Sequence[EventInput], create_customers: bool = True
) -> list[EventResult]:
    """Store a batch of events once each, run the stage rules on them, and announce them.

    A client event id already stored for that customer makes the item a duplicate (a retry);
    the stored event is returned. Customers named by external id are created when unknown."""
    now = timezone.now()
    customers = _customers_for(items, create_customers)
    resolved = [(item, item.customer or customers[item.customer_external_id]) for item in items]
    existing = _existing_events(resolved)
    results: list[EventResult | None] = []
    fresh: list[Event] = []
    for item, customer in resolved:
        key = (customer.pk, item.client_event_id)
        if item.client_event_id is not None and key in existing:
            results.append(EventResult("duplicate", existing[key]))
            continue
        event = Event(
            customer=customer, name=item.name, properties=item.properties,
            occurred_at=item.occurred_at, received_at=now, client_event_id=item.client_event_id,
        )
        existing[key] = event  # a second copy inside the same batch is a duplicate too
        fresh.append(event)
        results.append(EventResult("created", event))
    Event.objects.bulk_create(fresh)
    _customers_touch(fresh)
    stage_rules_apply_to_events(events=fresh)
    transaction.on_commit(lambda: events_announce(fresh))
    return results


def event_track(*, customer: Customer, name: str, occurred_at: datetime | None = None,
                properties: dict | None = None, client_event_id: str | None = None) -> EventResult:
    item = EventInput(
        name=name, occurred_at=occurred_at or timezone.now(), properties=properties or {},
        client_event_id=client_event_id, customer=customer,
    )
    return events_track(items=[item])[0]


def _customers_for(items: Sequence[EventInput], create: bool) -> dict[str, Customer]:
    external_ids = {item.customer_external_id for item in items if item.customer is None}
    if not external_ids:
        return {}
    # Only the columns ingestion uses: building 1000 full Customer rows costs more than the
    # SELECT itself. Other fields load on access.
    known = Customer.objects.only("pk", "external_id")
    found = {c.external_id: c for c in known.filter(external_id__in=external_ids)}
    missing = external_ids - set(found)
    if missing and not create:
        raise Customer.DoesNotExist(f"Unknown customers: {', '.join(sorted(missing))}")
    if missing:
        Customer.objects.bulk_create(
            [Customer(external_id=eid, bucket=customer_bucket(eid)) for eid in missing],
            ignore_conflicts=True,
        )
        found.update({c.external_id: c for c in known.filter(external_id__in=missing)})
    return found


def _existing_events(resolved) -> dict[tuple[int, str], Event]:
    keyed = {(c.pk, i.client_event_id) for i, c in resolved if i.client_event_id is not None}
    ids = _stored_event_ids(keyed) if keyed else []
    if not ids:
        return {}
    return {(e.customer_id, e.client_event_id): e for e in Event.objects.filter(pk__in=ids)}


def _stored_event_ids(keyed: set[tuple[int, str]]) -> list[int]:
    """Ids of the events already stored under these (customer, client event id) pairs, with one
    index probe per pair. Two IN lists would make SQLite probe their cross product (a million
    seeks for a batch of 1000), and a join lets PostgreSQL choose to scan the whole table."""
    table = connection.ops.quote_name(Event._meta.db_table)
    pairs = ", ".join(["(%s, %s)"] * len(keyed))
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH sent (customer_id, client_event_id) AS (VALUES {pairs}) "
            f"SELECT (SELECT e.id FROM {table} e WHERE e.customer_id = sent.customer_id "
            f"AND e.client_event_id = sent.client_event_id) FROM sent",
            [value for pair in keyed for value in pair],
        )
        return [event_id for (event_id,) in cursor.fetchall() if event_id is not None]


def _customers_touch(events: list[Event]) -> None:
    """Advance last_seen_at to each customer's newest event, in one UPDATE, never backwards
    (a concurrent batch with newer events keeps its value), and to the minute: a value less
    than LAST_SEEN_RESOLUTION older is left alone."""
    if not events:
        return
    newest: dict[int, datetime] = {}
    for event in events:
        if event.customer_id not in newest or event.occurred_at > newest[event.customer_id]:
            newest[event.customer_id] = event.occurred_at
    # A VALUES list joined in SQL: the ORM spends ~2 ms building each WHEN of a CASE, which
    # made this UPDATE cost seconds for a batch of 1000 customers.
    table = connection.ops.quote_name(Customer._meta.db_table)
    adapt = connection.ops.adapt_datetimefield_value
    rows = ", ".join(["(%s, %s, %s)"] * len(newest))
    params = [value for pk, seen in newest.items()
              for value in (pk, adapt(seen), adapt(_a_resolution_before(seen)))]
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH seen (id, at, stale_before) AS (VALUES {rows}) "
            f"UPDATE {table} SET last_seen_at = seen.at FROM seen WHERE {table}.id = seen.id "
            f"AND ({table}.last_seen_at IS NULL OR {table}.last_seen_at <= seen.stale_before)",
            params,
        )


def _a_resolution_before(moment: datetime) -> datetime:
    try:
        return moment - LAST_SEEN_RESOLUTION
    except OverflowError:  # within the first minute of year 1
        return moment


def events_announce(events: list[Event]) -> None:
    """Tell the apps above that these events were tracked (call after they are committed)."""
    for event in events:
        event_tracked.send(
            sender=Event, event_id=event.pk, customer_id=event.customer_id, name=event.name
        )


def customer_token_mint(*, customer: Customer) -> str:
    """A token the brand backend hands to its app; it authenticates as this customer only."""
    return signing.dumps({"c": customer.pk}, salt=CUSTOMER_TOKEN_SALT, compress=True)


def customer_token_read(token: str, *, max_age: int) -> int:
    """The primary key of the customer a token names. Raises signing.SignatureExpired for an
    old token and signing.BadSignature for anything that is not one of ours."""
    payload = signing.loads(token, salt=CUSTOMER_TOKEN_SALT, max_age=max_age)
    if not isinstance(payload, dict) or type(payload.get("c")) is not int:
        raise signing.BadSignature("Not a customer token.")
    return payload["c"]


# --- Segments ---------------------------------------------------------------------------------
# The segment section keeps its own imports so that it reads on its own.
from collections.abc import Iterable  # noqa: E402

from audiences.models import Segment, SegmentMember  # noqa: E402
from audiences.segments import validate_rules  # noqa: E402
from audiences.selectors import (  # noqa: E402
    UnknownExternalIds,
    external_ids_resolve,
    segment_key_change_problem,
    segment_referrers,
    segment_users,
)


@transaction.atomic
def segment_save(*, segment: Segment) -> Segment:
    """Validate and store a segment, new or changed. A dynamic segment's rules must compile
    (which also refuses reference cycles and unknown topics); a static segment keeps no rules,
    its members come from segment_members_replace. A key that other segments' rules name
    cannot change under them."""
    if segment.kind == Segment.Kind.STATIC:
        segment.rules = {}
    else:
        try:
            validate_rules(segment.rules, segment_id=segment.pk)
        except ValidationError as error:
            raise ValidationError({"rules": error.messages})
    segment.key = segment.key or segment.key_from_name()
    _segment_key_change_check(segment)
    segment.full_clean()
    segment.save()
    return segment


def _segment_key_change_check(segment: Segment) -> None:
    problem = segment_key_change_problem(segment, segment.key)
    if problem:
        raise ValidationError({"key": problem})


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def segment_create(*, name: str, kind: str = Segment.Kind.DYNAMIC, rules=None,
                   description: str = "", key: str = "") -> Segment:
    segment = Segment(name=name, key=key, kind=kind, rules={} if rules is None else rules,
                      description=description)
    return segment_save(segment=segment)


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    """Delete a segment that nothing uses. Raises ValidationError naming what uses it: other
    segments' rules, or the campaigns, steps and sends that point at it (those keep their
    history, so the segment stays)."""
    referrers = [other.name for other in segment_referrers(segment)]
    if referrers:
        raise ValidationError(f"The rules of {_listed(referrers)} use this segment.")
    users = segment_users(segment)
    if users:
        raise ValidationError(f"This segment is used by {_listed(users)}.")
    SegmentMember.objects.filter(segment=segment).delete()  # one DELETE, however long the list
    segment.delete()


@transaction.atomic
def segment_members_replace(*, segment: Segment, external_ids: Iterable[str]) -> int:
    """Make a static segment's members exactly the customers named by ``external_ids``.
    Returns the new member count.

    One entry per line of the source (blank entries are skipped but counted, so reported line
    numbers match the file). If any id names no customer, raises ValidationError listing the
    first 20 with their line numbers, and nothing changes. Ids go in chunks: memory stays
    bounded, and each chunk is one lookup and one INSERT."""
    _static_locked(segment)
    SegmentMember.objects.filter(segment=segment).delete()
    _members_add(segment, external_ids)
    return SegmentMember.objects.filter(segment=segment).count()


@transaction.atomic
def segment_members_change(*, segment: Segment, add: Iterable[str] = (),
                           remove: Iterable[str] = ()) -> dict[str, int]:
    """Add and remove members of a static segment by external id. Returns {"added",
    "removed", "count"}. An id to add that names no customer fails the whole change, as in
    segment_members_replace; an id to remove that names no member is already not one."""
    _static_locked(segment)
    members = SegmentMember.objects.filter(segment=segment)
    before = members.count()
    removed = 0
    for known, _ in external_ids_resolve(remove):
        removed += members.filter(customer_id__in=list(known.values())).delete()[0]
    _members_add(segment, add)
    count = members.count()
    return {"added": count - before + removed, "removed": removed, "count": count}


def _static_locked(segment: Segment) -> None:
    if segment.kind != Segment.Kind.STATIC:
        raise ValidationError("Only a static segment takes an uploaded member list.")
    Segment.objects.select_for_update().get(pk=segment.pk)  # one change at a time


def _members_add(segment: Segment, external_ids: Iterable[str]) -> None:
    unknown = UnknownExternalIds()
    for known, missing in external_ids_resolve(external_ids):
        unknown.add(missing)
        if not unknown.total:  # once doomed, only count the rest; the rollback undoes all
            SegmentMember.objects.bulk_create(
                [SegmentMember(segment=segment, customer_id=pk) for pk in known.values()],
                ignore_conflicts=True,  # an id listed twice, or already a member
            )
    unknown.raise_if_any()

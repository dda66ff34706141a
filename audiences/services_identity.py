"""Identity: merging an anonymous customer into a known one, and erasing a customer.

Each runs in one transaction. Upper apps hold rows of the customer that audiences cannot
import (devices, deliveries, enrollments...): they receive ``customer_merging`` or
``customer_erasing`` inside the transaction and move or anonymise their rows with set-based
statements, returning how many; audiences then does its own, also set-based, so a customer
with 100,000 events is merged or erased in a few statements, never a loop over rows."""

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import connection, transaction
from django.db.models import CASCADE, DO_NOTHING, SET_NULL, OuterRef, Q, QuerySet, Subquery

from audiences.models import (
    Customer,
    CustomerErasure,
    CustomerMerge,
    Event,
    SegmentMember,
    StageTransition,
    TopicOptOut,
)
from audiences.selectors import relations_to
from audiences.services import customer_get_or_create_locked
from audiences.signals import customer_erasing, customer_merging
from audiences.stages import stage_rules_apply_plan, stage_rules_plan_for_merge

ERASED_BY_MAX = CustomerErasure._meta.get_field("erased_by").max_length


@dataclass(frozen=True)
class MergeResult:
    merge: CustomerMerge
    already_merged: bool  # the same merge was done before: nothing moved now


class MergedElsewhere(Exception):
    """The anonymous customer was merged, earlier, into another known customer."""

    def __init__(self, merge: CustomerMerge):
        super().__init__(f"It was merged into another customer on {merge.merged_at:%Y-%m-%d}.")
        self.merge = merge


@transaction.atomic
def customer_merge(*, external_id: str, anonymous_external_id: str | None = None,
                   anonymous_pk: int | None = None) -> MergeResult:
    """Merge the anonymous customer (by external id, or by primary key as a customer token
    names it) into the customer ``external_id``, created if new. Asked again after it was
    done, answers the earlier merge. Raises Customer.DoesNotExist if the anonymous customer
    is unknown, MergedElsewhere if it went into another customer, ValidationError if both
    are the same customer."""
    if (anonymous_external_id is None) == (anonymous_pk is None):
        raise TypeError("customer_merge() takes anonymous_external_id or anonymous_pk")
    anonymous = _locked_pair(external_id, anonymous_external_id, anonymous_pk)
    if anonymous is None:
        return MergeResult(_earlier_merge(external_id, anonymous_external_id, anonymous_pk),
                           already_merged=True)
    known, _ = customer_get_or_create_locked(external_id)
    if known.pk == anonymous.pk:
        raise ValidationError("A customer cannot be merged into itself.")
    return MergeResult(_merge(anonymous, known), already_merged=False)


def _locked_pair(external_id: str, anonymous_external_id: str | None,
                 anonymous_pk: int | None) -> Customer | None:
    """Lock both customers in primary key order (two merges of the same pair, either way
    round, wait for each other instead of deadlocking); return the anonymous one."""
    named = Q(pk=anonymous_pk) if anonymous_pk else Q(external_id=anonymous_external_id)
    locked = list(Customer.objects.select_for_update()
                  .filter(named | Q(external_id=external_id)).order_by("pk"))
    return next((c for c in locked if (c.pk == anonymous_pk if anonymous_pk
                                       else c.external_id == anonymous_external_id)), None)


def _earlier_merge(external_id: str, anonymous_external_id: str | None,
                   anonymous_pk: int | None) -> CustomerMerge:
    merges = CustomerMerge.objects.select_related("customer").order_by("-merged_at", "-pk")
    if anonymous_pk:
        merge = merges.filter(anonymous_customer_id=anonymous_pk).first()
    else:
        merge = merges.filter(anonymous_external_id=anonymous_external_id).first()
    if merge is None:
        raise Customer.DoesNotExist("No such anonymous customer, and none was merged.")
    if merge.customer.external_id != external_id:
        raise MergedElsewhere(merge)
    return merge


def _merge(anonymous: Customer, known: Customer) -> CustomerMerge:
    moved: dict[str, int] = {}
    for _, counts in customer_merging.send(sender=Customer, anonymous_id=anonymous.pk,
                                           customer_id=known.pk):
        moved.update(counts or {})
    moved["duplicate_events"] = _duplicate_events_drop(anonymous, known)
    plan = stage_rules_plan_for_merge(anonymous=anonymous, known=known)
    moved["events"] = Event.objects.filter(customer=anonymous).update(customer=known)
    moved["stage_transitions"] = (StageTransition.objects.filter(customer=anonymous)
                                  .update(customer=known))
    moved["topic_opt_outs"] = _move_missing(TopicOptOut, "topic_id", anonymous, known)
    moved["segment_memberships"] = _move_missing(SegmentMember, "segment_id", anonymous, known)
    moved["referrals"] = (Customer.objects.filter(referred_by=anonymous).exclude(pk=known.pk)
                          .update(referred_by=known))
    CustomerMerge.objects.filter(customer=anonymous).update(customer=known)  # earlier merges
    _profile_merge(anonymous, known)
    anonymous_pk = anonymous.pk
    anonymous.delete()  # what is left of it: duplicates the known customer already has
    merge = CustomerMerge.objects.create(
        anonymous_external_id=anonymous.external_id, anonymous_customer_id=anonymous_pk,
        customer=known, moved=moved,
    )
    stage_rules_apply_plan(customer=known, plan=plan)
    return merge


def _duplicate_events_drop(anonymous: Customer, known: Customer) -> int:
    """The anonymous customer's events whose client event id the known customer also has are
    the same events, sent twice: rows that refer to them are pointed at the known customer's
    copy, and they are deleted."""
    known_ids = Event.objects.filter(customer=known, client_event_id__isnull=False)
    duplicates = Event.objects.filter(
        customer=anonymous, client_event_id__in=known_ids.values("client_event_id"))
    for relation in _event_relations():
        field = relation.field
        same_id = Event.objects.filter(pk=OuterRef(OuterRef(field.attname)))
        kept = known_ids.filter(client_event_id=Subquery(same_id.values("client_event_id")[:1]))
        referring = relation.related_model._base_manager.filter(
            **{f"{field.name}__in": duplicates.values("pk")})
        referring.update(**{field.name: Subquery(kept.values("pk")[:1])})
    return _rows_delete(duplicates)


def _move_missing(model, other: str, anonymous: Customer, known: Customer) -> int:
    """Move the anonymous customer's rows of ``model`` that the known one lacks (by the
    ``other`` column of their unique pair); the rest go with the anonymous customer."""
    has = model.objects.filter(customer=known).values(other)
    return (model.objects.filter(customer=anonymous).exclude(**{f"{other}__in": has})
            .update(customer=known))


def _profile_merge(anonymous: Customer, known: Customer) -> None:
    """The known customer's values win; the anonymous one fills what the known one lacks (a
    blank name or e-mail, the default locale or time zone, attributes it does not have). An
    opt-out of either stands: the safer choice."""
    for name in ("first_name", "last_name", "email"):
        if not getattr(known, name):
            setattr(known, name, getattr(anonymous, name))
    for name in ("locale", "time_zone"):
        if getattr(known, name) == Customer._meta.get_field(name).default:
            setattr(known, name, getattr(anonymous, name))
    known.attributes = {**anonymous.attributes, **known.attributes}
    known.push_opt_out = known.push_opt_out or anonymous.push_opt_out
    seen = [moment for moment in (known.last_seen_at, anonymous.last_seen_at) if moment]
    known.last_seen_at = max(seen, default=None)
    if known.referred_by_id in (None, anonymous.pk):
        referrer = anonymous.referred_by_id
        known.referred_by_id = referrer if referrer != known.pk else None
    known.save()


# --- Erasure ----------------------------------------------------------------------------------


@transaction.atomic
def customer_erase(*, customer: Customer, erased_by: str) -> CustomerErasure:
    """Erase a customer: their profile, consent, memberships and events are deleted; rows that
    reports count (deliveries, enrollments, conversions, stage transitions) stay, without
    the customer or anything personal. Records who erased them, when, what was removed, and
    a keyed hash of the external id."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    erasure = CustomerErasure.objects.create(
        external_id_hash=CustomerErasure.hash_external_id(customer.external_id),
        erased_by=erased_by[:ERASED_BY_MAX],
    )
    removed: dict[str, int] = {}
    for _, counts in customer_erasing.send(sender=Customer, customer_id=customer.pk,
                                           erasure_id=erasure.pk):
        removed.update(counts or {})
    events = Event.objects.filter(customer=customer)
    _references_clear(events)
    removed["events"] = _rows_delete(events)
    removed["stage_transitions"] = (StageTransition.objects.filter(customer=customer)
                                    .update(customer=None))
    removed["topic_opt_outs"] = TopicOptOut.objects.filter(customer=customer).delete()[0]
    removed["segment_memberships"] = SegmentMember.objects.filter(customer=customer).delete()[0]
    removed["merges"] = CustomerMerge.objects.filter(customer=customer).delete()[0]
    removed["referrals"] = Customer.objects.filter(referred_by=customer).update(referred_by=None)
    customer.delete()  # the row itself: every other row of theirs is gone or detached now
    erasure.removed = removed
    erasure.save(update_fields=["removed"])
    return erasure


def customer_erasure_find(external_id: str) -> CustomerErasure | None:
    """The latest erasure of the customer who had this external id, if any."""
    hashed = CustomerErasure.hash_external_id(external_id)
    return CustomerErasure.objects.filter(external_id_hash=hashed).order_by("-pk").first()


def _event_relations():
    """The foreign keys of every app to events (audiences imports none of them), hidden ones
    (related_name="+") included, as Django's own delete finds them."""
    return relations_to(Event)


def _references_clear(events: QuerySet) -> None:
    """Do what each foreign key to these events declared for a delete, in one UPDATE per key
    (Django's delete() would load every event to do it row by row)."""
    for relation in _event_relations():
        if relation.on_delete is DO_NOTHING:
            continue
        if relation.on_delete is not SET_NULL and relation.on_delete is not CASCADE:
            raise ImproperlyConfigured(
                f"{relation.related_model.__name__}.{relation.field.name} protects events: "
                "erasing a customer would have to remove what refers to their events."
            )
        referring = relation.related_model._base_manager.filter(
            **{f"{relation.field.name}__in": events.values("pk")})
        if relation.on_delete is SET_NULL:
            referring.update(**{relation.field.name: None})
        else:
            referring.delete()


def _rows_delete(rows: QuerySet) -> int:
    """DELETE the rows in one statement. Only for rows nothing refers to any more."""
    meta = rows.model._meta
    table, pk = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(meta.pk.column)
    sql, params = rows.values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({sql})", params)
        return cursor.rowcount

"""Enrollments made, moved and ended in bulk, and the rules every entry follows.

- ``enrollments_enter_audience`` enrolls a segment with one INSERT ... SELECT (broadcast and
  recurring runs, segment-trigger journeys); the group (control, holdout, treatment) is
  computed in SQL from the customer's stable bucket. It returns how many entered: the caller
  has the tick advance them (campaigns.services).
- The rules of entry (groups, re-entry, max enrollments, the campaign lock) are shared with
  the entry of one customer on an event or a stage (campaigns.engine.entry).
- ``enrollments_move`` and ``enrollments_exit_all`` move or end a step's or a campaign's
  enrollments when staff edit or archive a campaign."""

from datetime import datetime

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Cast, Mod
from django.db.models.lookups import Exact
from django.utils import timezone

from audiences.models import BUCKET_COUNT, Customer
from audiences.selectors import segment_customers
from campaigns.engine.local_time import next_local_time
from campaigns.engine.walk import Steps
from campaigns.models import (
    HOLDOUT_MULTIPLIER,
    SALT_MULTIPLIER,
    Campaign,
    Enrollment,
    Step,
    holdout_slot,
)
from notifications.models import DeliverySettings
from notifications.selectors import customer_time_zone

# --- Groups ---------------------------------------------------------------------------------


def control_slots_for(campaign: Campaign) -> int:
    """The global control group never hears from a marketing campaign; transactional ones
    (order updates) reach it."""
    return 0 if campaign.transactional else DeliverySettings.load().control_slots()


def group_for(campaign: Campaign, bucket: int, control_slots: int) -> str:
    if bucket < control_slots:
        return Enrollment.Group.CONTROL
    if holdout_slot(bucket, campaign.pk) < campaign.holdout_slots():
        return Enrollment.Group.HOLDOUT
    return Enrollment.Group.TREATMENT


def group_sql(campaign: Campaign, control_slots: int) -> tuple[Case, Mod]:
    """group_for in SQL over a Customer queryset: (the group, given the holdout slot annotated
    as jh_holdout_slot; the holdout slot, models.holdout_slot mirrored)."""
    slot = Mod(Cast(F("bucket"), BigIntegerField()) * HOLDOUT_MULTIPLIER
               + campaign.pk * SALT_MULTIPLIER, BUCKET_COUNT)
    return Case(
        When(bucket__lt=control_slots, then=Value(Enrollment.Group.CONTROL)),
        When(Q(jh_holdout_slot__lt=campaign.holdout_slots()),
             then=Value(Enrollment.Group.HOLDOUT)),
        default=Value(Enrollment.Group.TREATMENT), output_field=CharField(),
    ), slot


# --- Re-entry -------------------------------------------------------------------------------


def reentry_policy(campaign: Campaign) -> str:
    """A broadcast enrolls each customer once; a recurring run skips the customers still in
    its previous run; a journey follows its own policy."""
    if campaign.kind == Campaign.Kind.BROADCAST:
        return Campaign.Reentry.ONCE
    if campaign.kind == Campaign.Kind.RECURRING:
        return Campaign.Reentry.ALWAYS
    return campaign.reentry


def reentry_blocking(campaign: Campaign, now: datetime) -> QuerySet[Enrollment]:
    """Enrollments of this campaign that keep their customer from entering again now."""
    enrollments = Enrollment.objects.filter(campaign=campaign)
    policy = reentry_policy(campaign)
    if policy == Campaign.Reentry.ONCE:
        return enrollments
    if policy == Campaign.Reentry.COOLDOWN and campaign.reentry_cooldown:
        return enrollments.filter(Q(state=Enrollment.State.ACTIVE)
                                  | Q(entered_at__gt=now - campaign.reentry_cooldown))
    return enrollments.filter(state=Enrollment.State.ACTIVE)


def remaining_places(campaign: Campaign) -> int | None:
    """How many more may enroll under max_enrollments (None: no limit). Call it with the
    campaign row locked, so that concurrent entries cannot both take the last place."""
    if campaign.max_enrollments is None:
        return None
    return max(0, campaign.max_enrollments - Enrollment.objects.filter(campaign=campaign).count())


def campaign_lock(campaign: Campaign) -> Campaign | None:
    return Campaign.objects.select_for_update().filter(pk=campaign.pk).first()


# --- Enrolling a segment --------------------------------------------------------------------


def enrollments_enter_audience(*, campaign: Campaign, now: datetime | None = None) -> int:
    """Enroll the campaign's audience in one INSERT ... SELECT. Broadcast and recurring:
    ``campaign.segment``; a segment-trigger journey: its trigger segment (and its optional
    ``segment`` filter). Returns how many entered; the caller has the tick advance them."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = campaign_lock(campaign)
        first = campaign.first_step() if campaign else None
        audience = _audience(campaign) if first else None
        if audience is None:
            return 0
        remaining = remaining_places(campaign)
        if remaining == 0:
            return 0
        audience = audience.exclude(Exists(reentry_blocking(campaign, now)
                                           .filter(customer_id=OuterRef("pk"))))
        return _insert_enrollments(campaign, first, audience, now, limit=remaining)


def _audience(campaign: Campaign) -> QuerySet[Customer] | None:
    if campaign.kind == Campaign.Kind.JOURNEY:
        if not campaign.trigger_segment_id:
            return None
        customers = segment_customers(campaign.trigger_segment)
        if campaign.segment_id:
            customers = customers.filter(pk__in=segment_customers(campaign.segment).values("pk"))
        return customers.order_by()
    return segment_customers(campaign.segment).order_by() if campaign.segment_id else None


def _insert_enrollments(campaign: Campaign, first: Step, audience: QuerySet, now,
                        limit: int | None = None) -> int:
    group, slot = group_sql(campaign, control_slots_for(campaign))
    next_run_at, waiting_for = arrival_sql(first, now, audience)
    columns = {
        "campaign_id": Value(campaign.pk), "customer_id": F("pk"), "step_id": Value(first.pk),
        "state": Value(Enrollment.State.ACTIVE), "group": F("jh_group"),
        "next_run_at": next_run_at, "waiting_for": Value(waiting_for),
        "entered_at": Value(now, DateTimeField()), "exit_reason": Value(""),
    }
    rows = audience.annotate(jh_holdout_slot=slot).annotate(jh_group=group)
    rows = rows.annotate(**{f"jh_{name}": value for name, value in columns.items()
                            if name != "group"})
    rows = rows.values(*(f"jh_{name}" for name in columns))
    if limit is not None:
        rows = rows.order_by("pk")[:limit]
    sql, params = rows.query.sql_with_params()
    quote = connection.ops.quote_name
    names = ", ".join(quote(Enrollment._meta.get_field(n).column) for n in columns)
    # WHERE true: SQLite would read ON CONFLICT as part of a join clause without it.
    statement = (f"INSERT INTO {quote(Enrollment._meta.db_table)} ({names}) "
                 f"SELECT * FROM ({sql}) AS jh_rows WHERE true ON CONFLICT DO NOTHING")
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.rowcount


def arrival_sql(step: Step, now: datetime, customers: QuerySet[Customer]):
    """(next_run_at expression over customers, waiting_for) for arriving at ``step`` now. A
    waiting step starts its wait on arrival; any other step is due at once (the tick runs it)."""
    if step.kind == Step.Kind.WAIT_UNTIL:
        zone_of = customer_time_zone()
        zones = (customers.order_by().annotate(jh_zone=zone_of)
                 .values_list("jh_zone", flat=True).distinct())
        whens = [When(Exact(zone_of, Value(zone)), then=Value(next_local_time(
            now, zone, step.local_time, step.weekdays))) for zone in zones]
        fallback = Value(next_local_time(now, "UTC", step.local_time, step.weekdays))
        if not whens:
            return Cast(fallback, DateTimeField()), ""
        return Case(*whens, default=fallback, output_field=DateTimeField()), ""
    return Value(arrival_at(step, now), DateTimeField()), arrival_waiting_for(step)


def arrival_at(step: Step, now: datetime, zone: str = "UTC") -> datetime:
    if step.kind == Step.Kind.WAIT_UNTIL:
        return next_local_time(now, zone, step.local_time, step.weekdays)
    if step.kind in (Step.Kind.WAIT, Step.Kind.WAIT_EVENT) and step.duration:
        return now + step.duration
    return now


def arrival_waiting_for(step: Step) -> str:
    return step.event_name if step.kind == Step.Kind.WAIT_EVENT else ""


# --- Ending and moving enrollments ----------------------------------------------------------


def enrollments_exit_all(*, campaign: Campaign, reason: str, now: datetime | None = None) -> int:
    now = now or timezone.now()
    return Enrollment.objects.filter(campaign=campaign, state=Enrollment.State.ACTIVE).update(
        state=Enrollment.State.EXITED, exited_at=now, exit_reason=reason, next_run_at=None,
        waiting_for="",
    )


@transaction.atomic
def enrollments_move(*, from_step: Step, to_step: Step | None = None,
                     now: datetime | None = None) -> int:
    """Move the active enrollments at ``from_step`` to arrive at ``to_step`` (None: the step
    that follows ``from_step``; none follows: they complete). Used before a step is removed
    from a running journey, so nobody is stranded. Returns how many moved."""
    now = now or timezone.now()
    if to_step is None:
        successor = Steps.load([from_step.campaign_id]).successor(from_step)
        to_step = Step.objects.filter(pk=successor).exclude(pk=from_step.pk).first()
    # Plain UPDATEs: each re-checks its WHERE on rows a concurrent tick just moved, so an
    # enrollment the tick took past this step is left where the tick put it.
    at_step = Enrollment.objects.filter(step=from_step, state=Enrollment.State.ACTIVE)
    if to_step is None:
        return at_step.update(state=Enrollment.State.EXITED, exited_at=now, next_run_at=None,
                              exit_reason=Enrollment.ExitReason.COMPLETED, waiting_for="")
    fields = {"step": to_step, "waiting_for": arrival_waiting_for(to_step)}
    if to_step.kind != Step.Kind.WAIT_UNTIL:
        return at_step.update(next_run_at=arrival_at(to_step, now), **fields)
    moved = 0
    at_step = at_step.annotate(jh_zone=customer_time_zone(customer="customer_id",
                                                          customer_zone="customer__time_zone"))
    zones = at_step.values_list("jh_zone", flat=True).distinct()
    for zone in list(zones):
        moved += at_step.filter(jh_zone=zone).update(
            next_run_at=arrival_at(to_step, now, zone), **fields)
    return moved

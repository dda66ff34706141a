"""The journey engine: enrolls customers and advances their enrollments.

- ``enrollments_advance`` (the tick) claims a batch of due enrollments with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` and walks them (campaigns.engine_walk) until each waits
  or exits, in one transaction: any number of workers may tick at once, none advances an
  enrollment another holds, and a Send is created in the same transaction as the move past its
  step, so a customer never gets the same step twice. Each batch is shared fairly by the
  running campaigns with due enrollments, each claimed through its own index range, so a paused
  campaign's backlog costs nothing and a huge broadcast cannot starve a small journey. An
  enrollment that a step fails for exits with ERROR; the rest of its batch advances.
- ``enrollments_enter_audience`` enrolls a segment with one INSERT ... SELECT (broadcast and
  recurring runs, segment-trigger journeys); the group (control, holdout, treatment) is
  computed in SQL from the customer's stable bucket.
- Journey entry on an event or a stage, goals and event waits: campaigns.engine_entry (its
  entry points are also importable from here)."""

from datetime import datetime

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    CharField,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Mod
from django.utils import timezone

from audiences.models import BUCKET_COUNT, Customer
from audiences.selectors import segment_customers
from campaigns.engine_time import next_local_time
from campaigns.engine_walk import (
    Cursor,
    Steps,
    due_filter,
    walks_write,
)
from campaigns.models import (
    HOLDOUT_MULTIPLIER,
    SALT_MULTIPLIER,
    Campaign,
    CampaignSettings,
    Enrollment,
    Step,
    holdout_slot,
)

TICK_BATCH = 10_000  # enrollments claimed per transaction: ~1 s of work, 10k row locks
TICK_MAX_BATCHES = 1_000  # one journeys_tick call advances at most 10M enrollments
CLAIM_COLUMNS = ("pk", "campaign_id", "customer_id", "group", "trigger_event_id", "step_id")


# --- The tick -------------------------------------------------------------------------------


def enrollments_advance(*, now: datetime | None = None, limit: int = TICK_BATCH,
                        ids: list[int] | None = None) -> int:
    """Claim up to ``limit`` due active enrollments of running campaigns and advance each
    until it waits or exits. The batch is shared fairly by the running campaigns that have
    due enrollments (oldest due first within each); ``ids``: only these. Returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = _claim_ids(ids, now, limit) if ids is not None else _claim_fair(now, limit)
        if rows:
            walk_and_write(_cursors(rows), now)
    return len(rows)


def _claimable(now: datetime) -> QuerySet[Enrollment]:
    return Enrollment.objects.filter(due_filter(now)).select_for_update(skip_locked=True)


def _claim_ids(ids: list[int], now: datetime, limit: int) -> list[tuple]:
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING).values("pk")
    due = _claimable(now).filter(pk__in=ids, campaign_id__in=running)
    return list(due.order_by("next_run_at").values_list(*CLAIM_COLUMNS)[:limit])


def _claim_fair(now: datetime, limit: int) -> list[tuple]:
    """One claim per running campaign with due enrollments, each walking the
    enrollment_due_by_campaign index from its oldest due row: the cost is the batch plus one
    index probe per running campaign, whatever a paused campaign has piled up."""
    rows = []
    for campaign_id, share in fair_shares(due_counts(now, limit), limit).items():
        rows += _claimable(now).filter(campaign_id=campaign_id).order_by(
            "next_run_at").values_list(*CLAIM_COLUMNS)[:share]
    return rows


class _CountOf(Subquery):
    """count(*) of a (sliced) subquery: counting stops at its LIMIT."""

    template = "(SELECT count(*) FROM (%(subquery)s) AS jh_counted)"
    output_field = IntegerField()


def due_counts(now: datetime, limit: int) -> dict[int, int]:
    """Running campaign id -> its due active enrollments, as far as sharing ``limit`` needs:
    one campaign due gets ``limit`` uncounted (a lone broadcast costs no extra read); several
    are counted up to an equal share each, and one that reaches it may take up to ``limit``.
    Campaigns with none due are left out. Counting reads at most ``limit`` index entries."""
    due_now = _running_due(now, cap=1)
    if len(due_now) <= 1:
        return {pk: limit for pk in due_now}
    cap = -(-limit // len(due_now))
    return {pk: count if count < cap else limit
            for pk, count in _running_due(now, cap, among=list(due_now)).items()}


def _running_due(now: datetime, cap: int, among: list[int] | None = None) -> dict[int, int]:
    # ORDER BY: planned once for any campaign, the count would otherwise be a sequential scan
    # that "stops after cap rows", which filters a paused campaign's whole backlog first.
    due = (Enrollment.objects.filter(due_filter(now), campaign_id=OuterRef("pk"))
           .order_by("next_run_at").values("next_run_at")[:cap])
    running = Campaign.objects.filter(status=Campaign.Status.RUNNING)
    if among is not None:
        running = running.filter(pk__in=among)
    counted = running.annotate(jh_due=_CountOf(due)).values_list("pk", "jh_due")
    return {pk: count for pk, count in counted if count}  # in Python: a WHERE counts twice


def fair_shares(due: dict[int, int], limit: int) -> dict[int, int]:
    """Split ``limit`` among campaigns by their due counts, water-filling: each gets an equal
    share, and what a small campaign does not need goes to the bigger ones. A broadcast's
    million due cannot hold a small journey's few back for more than one batch."""
    shares, left = {}, limit
    ordered = sorted(due.items(), key=lambda item: item[1])
    for index, (campaign_id, count) in enumerate(ordered):
        share = min(count, -(-left // (len(ordered) - index)))  # ceil: no slot goes unused
        if share > 0:
            shares[campaign_id] = share
        left -= share
    return shares


def _cursors(rows) -> list[Cursor]:
    """Cursors for claimed rows; the walk decides whether each arrives at or leaves its step,
    and looks customers up only for the steps that need them."""
    return [Cursor(pk, campaign_id, customer_id, None, None, group, event_id, step_id, mode=None)
            for pk, campaign_id, customer_id, group, event_id, step_id in rows]


def customers_bucket_and_zone(ids: list[int]) -> dict[int, tuple[int, str]]:
    if connection.vendor != "postgresql":
        return {pk: (bucket, zone) for pk, bucket, zone in Customer.objects.filter(
            pk__in=ids).values_list("pk", "bucket", "time_zone")}
    with connection.cursor() as cursor:  # one array parameter, not 10,000
        cursor.execute(f"SELECT id, bucket, time_zone FROM {Customer._meta.db_table} "
                       f"WHERE id = ANY(%s)", [list(set(ids))])
        return {pk: (bucket, zone) for pk, bucket, zone in cursor.fetchall()}


def walk_and_write(cursors: list[Cursor], now: datetime) -> list[int]:
    """Advance the cursors until each waits or exits; an enrollment that a step fails for
    exits with ERROR instead of failing the others (engine_walk.walks_write). Returns the ids
    that exited so."""
    return walks_write(cursors, now)


def journeys_tick(*, now: datetime | None = None) -> int:
    """Advance batches until nothing is due (at most TICK_MAX_BATCHES), then mark the
    campaigns whose enrollments have all ended as completed. Returns how many advanced."""
    from campaigns.services import campaigns_complete_finished  # services import the engine

    now = now or timezone.now()
    advanced = 0
    for _batch in range(TICK_MAX_BATCHES):
        count = enrollments_advance(now=now)
        advanced += count
        if count == 0:  # not "< TICK_BATCH": shares counted rows another worker had locked
            break
    campaigns_complete_finished(now=now)
    return advanced


# --- Groups ---------------------------------------------------------------------------------


def control_slots_for(campaign: Campaign) -> int:
    """The global control group never hears from a marketing campaign; transactional ones
    (order updates) reach it."""
    return 0 if campaign.transactional else CampaignSettings.load().control_slots()


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
    """Enroll the campaign's audience in one INSERT ... SELECT and have the tick advance them
    at once. Broadcast and recurring: ``campaign.segment``; a segment-trigger journey: its
    trigger segment (and its optional ``segment`` filter). Returns how many entered."""
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
        entered = _insert_enrollments(campaign, first, audience, now, limit=remaining)
        if entered:
            tick_soon()
    return entered


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
        zones = customers.order_by().values_list("time_zone", flat=True).distinct()
        whens = [When(time_zone=zone, then=Value(next_local_time(
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


def tick_soon() -> None:
    """Advance what was just enrolled now, not at the next minute's tick."""
    from campaigns import tasks

    transaction.on_commit(lambda: tasks.journeys_tick.delay())


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
    zones = at_step.values_list("customer__time_zone", flat=True).distinct()
    for zone in list(zones):
        moved += at_step.filter(customer__time_zone=zone).update(
            next_run_at=arrival_at(to_step, now, zone), **fields)
    return moved


# --- Entry on events, stages and segments (campaigns.engine_entry), by their contract names ---


def event_process(*, event_id: int) -> None:
    from campaigns.engine_entry import event_process as process

    process(event_id=event_id)


def stage_process(*, customer_id: int, to_stage: str) -> None:
    from campaigns.engine_entry import stage_process as process

    process(customer_id=customer_id, to_stage=to_stage)


def segment_entries_process(*, now: datetime | None = None) -> int:
    from campaigns.engine_entry import segment_entries_process as process

    return process(now=now)

"""The tick: advances due enrollments, a batch at a time.

``enrollments_advance`` claims a batch of due enrollments with ``SELECT ... FOR UPDATE SKIP
LOCKED`` and walks them (campaigns.engine.walk) until each waits or exits, in one transaction:
any number of workers may tick at once, none advances an enrollment another holds, and a Send
is created in the same transaction as the move past its step, so a customer never gets the
same step twice. Each batch is shared fairly by the running campaigns with due enrollments,
each claimed through its own index range, so a paused campaign's backlog costs nothing and a
huge broadcast cannot starve a small journey. An enrollment that a step fails for exits with
ERROR; the rest of its batch advances."""

from datetime import datetime

from django.db import transaction
from django.db.models import IntegerField, OuterRef, QuerySet, Subquery
from django.utils import timezone

from campaigns.engine.walk import Cursor, due_filter, walks_write
from campaigns.models import Campaign, Enrollment

TICK_BATCH = 10_000  # enrollments claimed per transaction: ~1 s of work, 10k row locks
TICK_MAX_BATCHES = 1_000  # one tick advances at most 10M enrollments
CLAIM_COLUMNS = ("pk", "campaign_id", "customer_id", "group", "trigger_event_id", "step_id")


def enrollments_advance(*, now: datetime | None = None, limit: int = TICK_BATCH,
                        ids: list[int] | None = None) -> int:
    """Claim up to ``limit`` due active enrollments of running campaigns and advance each
    until it waits or exits. The batch is shared fairly by the running campaigns that have
    due enrollments (oldest due first within each); ``ids``: only these. Returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        rows = _claim_ids(ids, now, limit) if ids is not None else _claim_fair(now, limit)
        if rows:
            walks_write(_cursors(rows), now)
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


def enrollments_advance_all(*, now: datetime | None = None) -> int:
    """Advance batches until nothing is due (at most TICK_MAX_BATCHES). Returns how many
    advanced."""
    now = now or timezone.now()
    advanced = 0
    for _batch in range(TICK_MAX_BATCHES):
        count = enrollments_advance(now=now)
        advanced += count
        if count == 0:  # not "< TICK_BATCH": shares counted rows another worker had locked
            break
    return advanced

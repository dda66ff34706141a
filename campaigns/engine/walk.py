"""Walking enrollments through their campaign's steps, a set of them at a time.

A walk takes cursors (an enrollment and where it stands) and moves them, hop by hop, until
each one waits or exits. Every hop handles the cursors standing on the same step together:
one segment query per split, one Send per (step, variant) and one UPDATE per attribute or
stage step, whatever the number of customers. The result is written with one UPDATE per
distinct outcome (all customers who now wait at the same step until the same moment share
one), never one UPDATE per enrollment.

Two modes, because a waiting step is met twice: ARRIVE (the enrollment reaches the step: a
send sends, a wait starts) and LEAVE (its wait is over, or its event wait timed out). The tick
leaves the waiting steps it claims and arrives at the others: an enrollment parked at a
waiting step always has its wait computed already (arrival writes next_run_at)."""

import json
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Q

from audiences.models import Event
from audiences.selectors import segment_customers
from campaigns.engine.customers import (
    customers_attribute_set,
    customers_bucket_and_zone,
    customers_stage_set,
)
from campaigns.engine.local_time import next_local_time
from campaigns.models import Campaign, Enrollment, Step, StepSend, percent_to_slots, variant_slot
from notifications.services import send_create

MAX_HOPS = 25  # steps one enrollment may take in one walk; validation forbids loops with no
#                wait, this only stops a broken graph from spinning a worker forever
HOP_LIMIT_DELAY = timedelta(seconds=1)  # a cursor out of hops goes on at the next tick
ARRIVE, LEAVE, HAPPENED = "arrive", "leave", "happened"  # HAPPENED: its awaited event came
logger = logging.getLogger(__name__)
PERSONALISED = re.compile(r"\bevent\.")  # a template reading the trigger event's properties


@dataclass
class Cursor:
    id: int
    campaign_id: int
    customer_id: int
    bucket: int | None  # None until a step needs it (Walk._customers_load)
    time_zone: str | None
    group: str
    trigger_event_id: int | None
    step_id: int | None
    mode: str | None = ARRIVE  # None: claimed by the tick, see Walk.__init__


@dataclass(frozen=True)
class Outcome:
    step_id: int | None
    next_run_at: datetime | None
    waiting_for: str = ""
    exit_reason: str = ""  # set: the enrollment exits


@dataclass
class Steps:
    """The steps of the campaigns a walk touches, loaded once per walk."""

    by_id: dict[int, Step] = field(default_factory=dict)
    variants: dict[int, list] = field(default_factory=dict)  # step id -> [(upper slot, variant)]
    successor_by_position: dict[int, int | None] = field(default_factory=dict)
    campaigns: dict[int, Campaign] = field(default_factory=dict)

    @classmethod
    def load(cls, campaign_ids) -> "Steps":
        steps = cls()
        rows = (Step.objects.filter(campaign_id__in=set(campaign_ids))
                .select_related("template", "campaign", "segment")
                .prefetch_related("variants__template").order_by("campaign_id", "position", "pk"))
        previous = None
        for step in rows:
            steps.by_id[step.pk] = step
            steps.variants[step.pk] = _variant_ranges(list(step.variants.all()))
            steps.campaigns[step.campaign_id] = step.campaign
            if previous is not None and previous.campaign_id == step.campaign_id:
                steps.successor_by_position[previous.pk] = step.pk
            steps.successor_by_position.setdefault(step.pk, None)
            previous = step
        return steps

    def successor(self, step: Step) -> int | None:
        """Where a step goes next (the yes branch of a split): its link, else the next step."""
        return step.next_step_id or self.successor_by_position.get(step.pk)


class Walk:
    def __init__(self, cursors: list[Cursor], now: datetime):
        self.now = now
        self.pending = cursors
        self.steps = Steps.load({c.campaign_id for c in cursors})
        for cursor in cursors:
            if cursor.mode is None:  # due at a waiting step: its wait is over; else: run it
                step = self.steps.by_id.get(cursor.step_id)
                cursor.mode = LEAVE if step is not None and step.kind in Step.WAITING else ARRIVE
        self.outcomes: dict[int, Outcome] = {}
        self.sends: list[int] = []  # ids of the Sends created

    def run(self) -> dict[int, Outcome]:
        for _hop in range(MAX_HOPS):
            if not self.pending:
                break
            moving, self.pending = self.pending, []
            groups: dict[tuple, list[Cursor]] = defaultdict(list)
            for cursor in moving:
                groups[(cursor.step_id, cursor.mode)].append(cursor)
            for (step_id, mode), cursors in groups.items():
                self._hop(self.steps.by_id.get(step_id), mode, cursors)
        for cursor in self.pending:  # out of hops: carry on at the next tick from here
            step = self.steps.by_id.get(cursor.step_id)
            if cursor.mode == ARRIVE and step is not None and step.kind in Step.WAITING:
                self._hop(step, ARRIVE, [cursor])  # start the wait (no side effects)
            else:
                self.outcomes[cursor.id] = Outcome(cursor.step_id, self.now + HOP_LIMIT_DELAY)
        return self.outcomes

    # --- moves ---------------------------------------------------------------------------

    def _go(self, cursors: list[Cursor], step_id: int | None, from_step: Step) -> None:
        """Arrive at ``step_id`` next; none means the branch ends here (completed)."""
        if step_id is None:
            self._exit(cursors, Enrollment.ExitReason.COMPLETED, from_step.pk)
            return
        for cursor in cursors:
            cursor.step_id, cursor.mode = step_id, ARRIVE
            self.pending.append(cursor)

    def _exit(self, cursors, reason: str, step_id: int | None) -> None:
        for cursor in cursors:
            self.outcomes[cursor.id] = Outcome(step_id, None, exit_reason=reason)

    def _park(self, cursors, step: Step, until, waiting_for: str = "") -> None:
        for cursor in cursors:
            when = until(cursor) if callable(until) else until
            self.outcomes[cursor.id] = Outcome(step.pk, when, waiting_for)

    # --- one hop: every cursor standing on one step ----------------------------------------

    def _hop(self, step: Step | None, mode: str, cursors: list[Cursor]) -> None:
        if step is None:  # its step was deleted under it
            self._exit(cursors, Enrollment.ExitReason.STEP_REMOVED, None)
            return
        if mode == HAPPENED:
            self._go(cursors, self.steps.successor(step), step)
            return
        if mode == LEAVE:
            target = step.else_step_id if step.kind == Step.Kind.WAIT_EVENT else \
                self.steps.successor(step)
            self._go(cursors, target, step)
            return
        handler = getattr(self, f"_arrive_{step.kind}")
        handler(step, cursors)

    def _arrive_wait(self, step: Step, cursors) -> None:
        self._park(cursors, step, self.now + (step.duration or timedelta(0)))

    def _customers_load(self, cursors: list[Cursor]) -> None:
        """Fill in bucket and time zone for the steps that need them (splits, variants,
        local times), in one query; most hops (waits, plain sends) never ask."""
        missing = [c.customer_id for c in cursors if c.bucket is None or c.time_zone is None]
        if not missing:
            return
        found = customers_bucket_and_zone(missing)
        for cursor in cursors:
            if cursor.bucket is None or cursor.time_zone is None:
                cursor.bucket, cursor.time_zone = found.get(cursor.customer_id, (0, "UTC"))

    def _arrive_wait_until(self, step: Step, cursors) -> None:
        self._customers_load(cursors)
        by_zone: dict[str, datetime] = {}

        def until(cursor: Cursor) -> datetime:
            if cursor.time_zone not in by_zone:
                by_zone[cursor.time_zone] = next_local_time(
                    self.now, cursor.time_zone, step.local_time, step.weekdays)
            return by_zone[cursor.time_zone]

        self._park(cursors, step, until)

    def _arrive_wait_event(self, step: Step, cursors) -> None:
        self._park(cursors, step, self.now + (step.duration or timedelta(0)), step.event_name)

    def _arrive_exit(self, step: Step, cursors) -> None:
        self._exit(cursors, Enrollment.ExitReason.EXIT_STEP, step.pk)

    def _arrive_split_random(self, step: Step, cursors) -> None:
        self._customers_load(cursors)
        slots = percent_to_slots(step.percent)
        yes = [c for c in cursors if variant_slot(c.bucket, step.pk) < slots]
        no = [c for c in cursors if variant_slot(c.bucket, step.pk) >= slots]
        self._go(yes, self.steps.successor(step), step)
        self._go(no, step.else_step_id, step)

    def _arrive_split_segment(self, step: Step, cursors) -> None:
        ids = [c.customer_id for c in cursors]
        try:
            members = set(segment_customers(step.segment).filter(pk__in=ids)
                          .values_list("pk", flat=True)) if step.segment_id else set()
        except ValidationError as error:  # rules edited into something invalid: "no", not a
            logger.warning("Step %s: segment %s is invalid (%s); taking the no branch.",
                           step.pk, step.segment_id, error)  # tick stuck on this batch
            members = set()
        self._go([c for c in cursors if c.customer_id in members], self.steps.successor(step),
                 step)
        self._go([c for c in cursors if c.customer_id not in members], step.else_step_id, step)

    def _arrive_set_attribute(self, step: Step, cursors) -> None:
        if step.attribute_key:
            customers_attribute_set(customer_ids=[c.customer_id for c in cursors],
                                    key=step.attribute_key, value=step.attribute_value)
        self._go(cursors, self.steps.successor(step), step)

    def _arrive_set_stage(self, step: Step, cursors) -> None:
        if step.stage:
            campaign = self.steps.campaigns[step.campaign_id]
            customers_stage_set(customer_ids=[c.customer_id for c in cursors], stage=step.stage,
                                cause=f"Campaign {campaign.name}: {step}"[:255])
        self._go(cursors, self.steps.successor(step), step)

    def _arrive_send(self, step: Step, cursors) -> None:
        """One Send per (variant, trigger event if the template reads it); the holdout and
        control groups walk on without one."""
        campaign = self.steps.campaigns[step.campaign_id]
        ranges = self.steps.variants[step.pk]
        if ranges:
            self._customers_load(cursors)
        personalised = {}  # template id -> reads event.*
        audiences: dict[tuple, list[int]] = defaultdict(list)
        for cursor in cursors:
            if cursor.group != Enrollment.Group.TREATMENT:
                continue
            variant = variant_for(ranges, step.pk, cursor.bucket) if ranges else None
            template = variant.template if variant else step.template
            if template is None:
                continue
            if template.pk not in personalised:
                personalised[template.pk] = _personalised(template)
            event_id = cursor.trigger_event_id if personalised[template.pk] else None
            audiences[(variant, template, event_id)].append(cursor.customer_id)
        for (variant, template, event_id), customer_ids in audiences.items():
            self.sends.append(_send(campaign, step, variant, template, event_id, customer_ids))
        self._go(cursors, self.steps.successor(step), step)


def _variant_ranges(variants) -> list:
    """[(upper bound, variant)]: slot * total < bound picks the variant (cumulative weights)."""
    total = sum(v.weight for v in variants)
    ranges, cumulative = [], 0
    for variant in variants:
        cumulative += variant.weight
        ranges.append((cumulative * 10_000, variant))
    return [(bound, variant, total) for bound, variant in ranges] if total else []


def variant_for(ranges: list, step_id: int, bucket: int):
    """The customer's A/B variant: stable, by the step-salted bucket against cumulative
    weights. None when the step has no variants (or all weigh 0)."""
    if not ranges:
        return None
    slot = variant_slot(bucket, step_id) * ranges[0][2]  # slot/10000 vs cumulative/total
    for bound, variant, _total in ranges:
        if slot < bound:
            return variant
    return ranges[-1][1]


def _personalised(template) -> bool:
    """Does the message read the trigger event (``{{ event.item }}``), in any language?"""
    texts = [template.title, template.body, template.url, json.dumps(template.data)]
    texts += [text for pair in template.translations.values_list("title", "body")
              for text in pair]
    return any(PERSONALISED.search(text or "") for text in texts)


def _send(campaign: Campaign, step: Step, variant, template, event_id, customer_ids) -> int:
    send = send_create(
        template=template, customer_ids=customer_ids,
        trigger_event=_event(event_id), throttle_per_minute=campaign.throttle_per_minute or None,
        respect_quiet_hours=campaign.respect_quiet_hours, cap_exempt=campaign.transactional,
        quiet_hours=(campaign.quiet_hours_start, campaign.quiet_hours_end),
        local_time=campaign.local_send_time if campaign.kind != Campaign.Kind.JOURNEY else None,
        local_time_passed=campaign.local_time_passed,
        expires_at=campaign.message_expires_at, source=f"campaign:{campaign.pk}/step:{step.pk}",
        throttle_key=f"campaign:{campaign.pk}", campaign_kind=campaign.kind,
    )
    StepSend.objects.create(step=step, campaign=campaign, variant=variant, send=send)
    return send.pk


def _event(event_id):
    return Event.objects.filter(pk=event_id).first() if event_id else None


# --- walking in savepoints: one enrollment's failure does not hold the others ----------------


def walks_write(cursors: list[Cursor], now: datetime) -> list[int]:
    """Walk the cursors and write their outcomes, in a savepoint. If a step fails with an
    unexpected error, nothing that walk did is kept and its cursors are walked again in
    halves, each in its own savepoint, down to the enrollment that fails alone: it exits with
    ERROR (logged with the error and the step), the others advance. Each such enrollment costs
    about 2 log2(batch) extra walks. OperationalError and InterfaceError (a lost connection,
    a deadlock, a cancelled statement) are nobody's fault: they fail the batch, which the next
    tick claims again. Returns the ids of the enrollments that exited with ERROR."""
    failed, groups = [], [cursors]
    while groups:
        group = groups.pop()
        failure = _walk_in_savepoint(group, now)
        if failure is None:
            continue
        if len(group) > 1:
            half = len(group) // 2
            groups += [group[half:], group[:half]]  # the first half is walked first
            continue
        _exit_failed(group[0], *failure, now)
        failed.append(group[0].id)
    return failed


def _walk_in_savepoint(cursors: list[Cursor], now: datetime) -> tuple[Exception, int] | None:
    """None if the walk was written; else the error and, for the first cursor, the step it
    stood on when it failed. The cursors are rewound to where they started."""
    start = [(cursor.step_id, cursor.mode) for cursor in cursors]  # a walk moves its cursors
    try:
        with transaction.atomic():
            outcomes_write(Walk(cursors, now).run(), now)
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:  # noqa: BLE001 - a bug in one step must not stall the batch
        failure = (error, cursors[0].step_id)
        for cursor, (step_id, mode) in zip(cursors, start, strict=True):
            cursor.step_id, cursor.mode = step_id, mode
        return failure
    return None


def _exit_failed(cursor: Cursor, error: Exception, step_id: int | None, now: datetime) -> None:
    logger.error("Enrollment %s (campaign %s, customer %s) failed at step %s and exits with "
                 "reason error; nothing of this walk was kept: %s", cursor.id,
                 cursor.campaign_id, cursor.customer_id, step_id, error, exc_info=error)
    outcomes_write({cursor.id: Outcome(step_id, None, exit_reason=Enrollment.ExitReason.ERROR)},
                   now)


# --- writing the outcomes -------------------------------------------------------------------


def outcomes_write(outcomes: dict[int, Outcome], now: datetime) -> None:
    """One UPDATE per distinct outcome."""
    by_outcome: dict[Outcome, list[int]] = defaultdict(list)
    for enrollment_id, outcome in outcomes.items():
        by_outcome[outcome].append(enrollment_id)
    for outcome, ids in by_outcome.items():
        if outcome.exit_reason:
            fields = {"step_id": outcome.step_id, "next_run_at": None, "waiting_for": "",
                      "state": Enrollment.State.EXITED, "exited_at": now,
                      "exit_reason": outcome.exit_reason}
        else:
            fields = {"step_id": outcome.step_id, "next_run_at": outcome.next_run_at,
                      "waiting_for": outcome.waiting_for}
        ids_update(ids, fields)


def ids_update(ids: list[int], fields: dict) -> int:
    """UPDATE enrollments SET fields WHERE id IN ids. On PostgreSQL one array parameter
    (= ANY), so a 10,000-id batch is not 10,000 bind parameters to parse."""
    if connection.vendor != "postgresql":
        return Enrollment.objects.filter(pk__in=ids).update(**fields)
    table = Enrollment._meta.db_table
    columns = ", ".join(f"{Enrollment._meta.get_field(name).column} = %s" for name in fields)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {columns} WHERE id = ANY(%s)",
                       [*fields.values(), list(ids)])
        return cursor.rowcount


def due_filter(now: datetime) -> Q:
    return Q(state=Enrollment.State.ACTIVE, next_run_at__lte=now)

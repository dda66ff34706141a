"""What an event or a stage change does to journeys: goals, event waits, and entry.

Each runs from a task enqueued on commit of the event (campaigns.receivers), so a customer
enters a journey within seconds, and a new or resumed enrollment is advanced at once. A
segment's customers enter all at once instead (campaigns.engine.enrollments)."""

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from audiences.models import Customer, Event
from audiences.selectors import segment_customers
from campaigns.engine.enrollments import (
    campaign_lock,
    control_slots_for,
    group_for,
    reentry_blocking,
    remaining_places,
)
from campaigns.engine.walk import ARRIVE, HAPPENED, Cursor, walks_write
from campaigns.models import Campaign, Conversion, Enrollment, Step
from notifications.models import Delivery

REVENUE_LIMIT = Decimal("1e10")  # Conversion.revenue holds 12 digits, 2 of them decimals
CENT = Decimal("0.01")


def event_process(*, event_id: int) -> None:
    """Goals first (so a journey's own trigger event cannot count as its goal), then event
    waits, then entry into journeys triggered by this event."""
    event = Event.objects.select_related("customer").filter(pk=event_id).first()
    if event is None:
        return
    now = timezone.now()
    goals_process(event=event, now=now)
    waits_resume(event=event, now=now)
    journeys = Campaign.objects.filter(
        kind=Campaign.Kind.JOURNEY, status=Campaign.Status.RUNNING,
        trigger=Campaign.Trigger.EVENT, trigger_event_name=event.name,
    )
    for campaign in journeys:
        if properties_match(campaign.trigger_event_filter, event.properties):
            enrollment_enter(campaign=campaign, customer=event.customer, trigger_event=event,
                             now=now)


def stage_process(*, customer_id: int, to_stage: str) -> None:
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return
    journeys = Campaign.objects.filter(
        kind=Campaign.Kind.JOURNEY, status=Campaign.Status.RUNNING,
        trigger=Campaign.Trigger.STAGE, trigger_stage=to_stage,
    )
    for campaign in journeys:
        enrollment_enter(campaign=campaign, customer=customer)


def properties_match(wanted, properties) -> bool:
    """Every wanted property equals the event's (a filter that is not an object matches
    nothing rather than crashing on bad data)."""
    if not wanted:
        return True
    if not isinstance(wanted, dict) or not isinstance(properties, dict):
        return False
    return all(key in properties and properties[key] == value for key, value in wanted.items())


# --- Entry ----------------------------------------------------------------------------------


def enrollment_enter(*, campaign: Campaign, customer: Customer, trigger_event: Event | None = None,
                     now: datetime | None = None) -> Enrollment | None:
    """Enroll one customer if the journey lets them in now, and advance them at once.

    The campaign row is locked while checking, so concurrent entries cannot exceed
    ``max_enrollments`` nor enroll one customer twice under the "once" policy."""
    now = now or timezone.now()
    with transaction.atomic():
        campaign = campaign_lock(campaign)
        if campaign is None or not _may_enter(campaign, customer, now):
            return None
        first = campaign.first_step()
        if first is None:
            return None
        group = group_for(campaign, customer.bucket, control_slots_for(campaign))
        enrollment = Enrollment.objects.create(
            campaign=campaign, customer=customer, step=first, group=group, next_run_at=now,
            trigger_event=trigger_event, entered_at=now,
        )
        walks_write([Cursor(enrollment.pk, campaign.pk, customer.pk, customer.bucket,
                            None, group, enrollment.trigger_event_id,
                            first.pk, ARRIVE)], now)
    return enrollment


def _may_enter(campaign: Campaign, customer: Customer, now: datetime) -> bool:
    if not campaign.is_live(now):
        return False
    if campaign.segment_id and not segment_customers(campaign.segment).filter(
            pk=customer.pk).exists():
        return False
    if reentry_blocking(campaign, now).filter(customer=customer).exists():
        return False
    return remaining_places(campaign) != 0


# --- Event waits ----------------------------------------------------------------------------


def waits_resume(*, event: Event, now: datetime) -> int:
    """Enrollments of this customer waiting for this event take their "happened" branch now.

    Only an event that occurred after the wait began counts (the wait began at
    next_run_at - timeout)."""
    with transaction.atomic():
        waiting = list(
            Enrollment.objects.select_for_update(of=("self",))
            .filter(customer_id=event.customer_id, state=Enrollment.State.ACTIVE,
                    waiting_for=event.name, step__kind=Step.Kind.WAIT_EVENT,
                    campaign__status=Campaign.Status.RUNNING)
            .select_related("step", "customer")
        )
        cursors = [
            Cursor(e.pk, e.campaign_id, e.customer_id, e.customer.bucket, None, e.group,
                   e.trigger_event_id, e.step_id, HAPPENED)
            for e in waiting if _wait_satisfied(e, event)
        ]
        if cursors:
            walks_write(cursors, now)
    return len(cursors)


def _wait_satisfied(enrollment: Enrollment, event: Event) -> bool:
    step = enrollment.step
    if not properties_match(step.event_filter, event.properties):
        return False
    if step.duration and enrollment.next_run_at:
        return event.occurred_at >= enrollment.next_run_at - step.duration
    return True


# --- Goals ----------------------------------------------------------------------------------


def goals_process(*, event: Event, now: datetime) -> int:
    """A goal event within a campaign's goal window after entry converts that enrollment
    (once): an active one exits with GOAL; one that already ended (a broadcast's, after its
    send) still converts. Returns how many conversions were recorded."""
    campaigns = Campaign.objects.filter(goal_event_name=event.name).exclude(
        status=Campaign.Status.DRAFT)
    converted = 0
    for campaign in campaigns:
        if not properties_match(campaign.goal_event_filter, event.properties):
            continue
        with transaction.atomic():
            enrollments = Enrollment.objects.select_for_update(of=("self",)).filter(
                campaign=campaign, customer_id=event.customer_id,
                entered_at__lte=event.occurred_at,
                entered_at__gte=event.occurred_at - campaign.goal_window,
                conversion__isnull=True,
            )
            for enrollment in enrollments:
                converted += conversion_record(campaign=campaign, enrollment=enrollment,
                                               event=event, now=now)
    return converted


def conversion_record(*, campaign: Campaign, enrollment: Enrollment, event: Event,
                      now: datetime) -> int:
    delivery = (
        Delivery.objects.filter(customer_id=enrollment.customer_id, status=Delivery.Status.SENT,
                                send__step_send__campaign=campaign,
                                sent_at__lte=event.occurred_at)
        .select_related("send__step_send").order_by("-sent_at", "-pk").first()
    )
    try:
        with transaction.atomic():
            Conversion.objects.create(
                campaign=campaign, enrollment=enrollment, customer_id=enrollment.customer_id,
                group=enrollment.group, event=event, delivery=delivery,
                variant_id=delivery.send.step_send.variant_id if delivery else None,
                revenue=revenue_of(event.properties, campaign.goal_revenue_property),
                occurred_at=event.occurred_at,
            )
    except IntegrityError:  # converted a moment ago by a concurrent event
        return 0
    if enrollment.state == Enrollment.State.ACTIVE:
        Enrollment.objects.filter(pk=enrollment.pk).update(
            state=Enrollment.State.EXITED, exited_at=now, next_run_at=None, waiting_for="",
            exit_reason=Enrollment.ExitReason.GOAL)
    return 1


def revenue_of(properties, key: str) -> Decimal:
    """The revenue property as money; missing, malformed or absurd values are 0."""
    if not key or not isinstance(properties, dict):
        return Decimal(0)
    raw = properties.get(key)
    if raw is None or isinstance(raw, bool | dict | list):
        return Decimal(0)
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        return Decimal(0)
    if not value.is_finite() or abs(value) >= REVENUE_LIMIT:
        return Decimal(0)
    return value.quantize(CENT, rounding=ROUND_HALF_UP)

"""Months of past runs of the demo campaigns, so every report, the lift and the dashboard have
data on the first page load.

Each demo campaign "ran" once a week for HISTORY_WEEKS weeks: a send from its first send step
to a share of the demo customers of its stage, with the enrollments (treatment and, for
campaigns with one, the holdout), one delivery per device (sent, some received and opened;
skipped for customers who opted out of push), conversions credited to an opened message (with
revenue for a revenue goal), a few holdout conversions, and the dead-token failure that
deactivated each inactive demo device. And referrals: recent demo customers who came by an
advocacy customer's code, with the link opening, the sign-up and, for those who converted,
the referral conversion. Every statement is an INSERT ... SELECT over the demo
customers (the same SQL on PostgreSQL and SQLite), so it costs a few hundred statements
whatever the campaigns; the draws are modular arithmetic on ids, so a run is reproducible.

Only the first DEFAULT demo customers take part: the scale data set gets no history of a
million deliveries a week."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from audiences.models import Customer, Event, Stage
from audiences.services import (
    REFERRAL_CONVERTED_EVENT,
    REFERRAL_LINK_OPENED_EVENT,
    REFERRAL_SIGNUP_EVENT,
)
from campaigns.models import Campaign, Step, StepSend
from notifications.models import Send

HISTORY_SOURCE = "demo: history"
HISTORY_WEEKS = 16  # about four months of weekly runs
DEAD_TOKEN_WEEKS = 4  # the dead tokens fall in the last four weekly runs (within 30 days)
LAST_HISTORY_CUSTOMER = "demo-002000"  # external ids sort: the first 2,000 demo customers


@dataclass(frozen=True)
class Plan:
    """How a demo campaign's past runs went: percent of its stage's customers per run, and of
    the messages sent, received, opened and converted (of the opened)."""

    stages: tuple[str, ...]
    reach: int
    opened: int
    converted: int
    holdout_converted: int = 0  # percent of the holdout converting anyway


PLANS = {
    "Weekly destination guides": Plan(("awareness",), 60, 18, 25, 8),
    "Order update": Plan(("engagement", "conversion"), 30, 55, 0),
    "Limited-time offer": Plan(("engagement",), 70, 24, 40, 6),
    "Friday picks for quiet customers": Plan(("retention",), 80, 12, 30, 4),
    "We miss you": Plan(("retention",), 25, 15, 35),
    "Referral ask after a great rating": Plan(("advocacy", "retention"), 30, 35, 30, 5),
}
RECEIVED_PERCENT = 85
REVENUE_BASE, REVENUE_SPREAD = 12, 60  # a converted order's total: 12.00 to 71.00

_DEMO_CUSTOMERS = """c.external_id >= 'demo-000001' AND c.external_id <= %(last_customer)s"""

_ENROLL_SQL = f"""
INSERT INTO campaigns_enrollment (campaign_id, customer_id, step_id, state, "group",
    next_run_at, waiting_for, trigger_event_id, entered_at, exited_at, exit_reason)
SELECT %(campaign)s, c.id, NULL, 'exited',
       CASE WHEN (c.id * 31 + %(campaign)s) %% 100 < %(holdout)s THEN 'holdout'
            ELSE 'treatment' END,
       NULL, '', NULL, %(entered)s, %(exited)s, 'completed'
FROM audiences_customer c
WHERE {_DEMO_CUSTOMERS} AND c.stage IN ({{stages}})
  AND (c.id * 7 + %(week)s * 13 + %(campaign)s * 3) %% 100 < %(reach)s"""

_DELIVERIES_SQL = """
INSERT INTO notifications_delivery (send_id, customer_id, device_id, erasure_id, kind,
    application_id, batch_no, status, reason, error, not_before, attempts, provider_message_id,
    created_at, sent_at, received_at, opened_at)
SELECT %(send)s, e.customer_id, d.id, NULL, d.kind, '', 1,
       CASE WHEN c.push_opt_out THEN 'skipped' ELSE 'sent' END,
       CASE WHEN c.push_opt_out THEN 'opted_out' ELSE '' END, '', NULL, 1, '', %(at)s,
       CASE WHEN c.push_opt_out THEN NULL ELSE %(sent)s END,
       CASE WHEN NOT c.push_opt_out AND (d.id * 11 + %(week)s) %% 100 < %(received_pct)s
            THEN %(received)s END,
       CASE WHEN NOT c.push_opt_out AND (d.id * 17 + %(week)s * 7) %% 100 < %(opened_pct)s
            THEN %(opened)s END
FROM campaigns_enrollment e
JOIN audiences_customer c ON c.id = e.customer_id
JOIN notifications_device d ON d.customer_id = e.customer_id AND d.is_active
WHERE e.campaign_id = %(campaign)s AND e.entered_at = %(entered)s AND e."group" = 'treatment'"""

# Each inactive demo device failed once with a dead token (which deactivated it), in one of the
# last DEAD_TOKEN_WEEKS runs (by its id): over the dashboard's default month, the tokens
# deactivated per day add up to the devices inactive now.
_DEAD_TOKENS_SQL = f"""
INSERT INTO notifications_delivery (send_id, customer_id, device_id, erasure_id, kind,
    application_id, batch_no, status, reason, error, not_before, attempts, provider_message_id,
    created_at, sent_at, received_at, opened_at)
SELECT %(send)s, d.customer_id, d.id, NULL, d.kind, '', 1, 'failed', 'dead_token',
       'Unregistered', NULL, 1, '', %(at)s, NULL, NULL, NULL
FROM notifications_device d JOIN audiences_customer c ON c.id = d.customer_id
WHERE {_DEMO_CUSTOMERS} AND NOT d.is_active
  AND d.id %% %(dead_token_weeks)s = %(week)s - %(first_dead_token_week)s"""

# A treatment customer converts on an opened message of the run (the first such delivery).
_CONVERSIONS_SQL = """
INSERT INTO campaigns_conversion (campaign_id, enrollment_id, customer_id, "group", event_id,
    delivery_id, variant_id, revenue, occurred_at)
SELECT e.campaign_id, e.id, e.customer_id, 'treatment', NULL,
       (SELECT MIN(d.id) FROM notifications_delivery d WHERE d.send_id = %(send)s
        AND d.customer_id = e.customer_id AND d.opened_at IS NOT NULL),
       NULL, CASE WHEN %(revenue)s THEN %(revenue_base)s + e.customer_id %% %(revenue_spread)s
                  ELSE 0 END, %(converted)s
FROM campaigns_enrollment e
WHERE e.campaign_id = %(campaign)s AND e.entered_at = %(entered)s AND e."group" = 'treatment'
  AND (e.customer_id * 13 + %(week)s * 5) %% 100 < %(converted_pct)s
  AND EXISTS (SELECT 1 FROM notifications_delivery d WHERE d.send_id = %(send)s
              AND d.customer_id = e.customer_id AND d.opened_at IS NOT NULL)"""

# Conversions no message is credited to: the holdout's, and those of treatment customers the
# run never reached (they opted out of push), which the reports count apart.
_UNCREDITED_CONVERSIONS_SQL = """
INSERT INTO campaigns_conversion (campaign_id, enrollment_id, customer_id, "group", event_id,
    delivery_id, variant_id, revenue, occurred_at)
SELECT e.campaign_id, e.id, e.customer_id, e."group", NULL, NULL, NULL,
       CASE WHEN %(revenue)s THEN %(revenue_base)s + e.customer_id %% %(revenue_spread)s
            ELSE 0 END, %(converted)s
FROM campaigns_enrollment e
WHERE e.campaign_id = %(campaign)s AND e.entered_at = %(entered)s
  AND (e.customer_id * 13 + %(week)s * 5) %% 100 < %(converted_pct)s
  AND NOT EXISTS (SELECT 1 FROM notifications_delivery d WHERE d.send_id = %(send)s
                  AND d.customer_id = e.customer_id AND d.status = 'sent')
  AND NOT EXISTS (SELECT 1 FROM campaigns_conversion x WHERE x.enrollment_id = e.id)"""


REFERRED_PERCENT = 15  # of the recent demo customers, those who came by a friend's code
CONVERTED_STAGES = ("conversion", "retention", "advocacy")  # a referee there has converted


def referrals_seed(*, now: datetime, since: datetime) -> int:
    """Some demo customers who joined since ``since`` came by an advocacy customer's code: their
    referrer, the link opening and the sign-up, and for those who went on to convert, the
    referral conversion with the revenue of an order. At most the first 2,000 demo customers
    (a bounded list, so plain Python). Returns how many referees."""
    demo = Customer.objects.filter(external_id__gte="demo-000001",
                                   external_id__lte=LAST_HISTORY_CUSTOMER)
    referrers = list(demo.filter(stage=Stage.ADVOCACY, created_at__lt=since).order_by("pk"))
    referees = [c for c in demo.filter(created_at__gte=since, referred_by__isnull=True)
                .exclude(stage=Stage.ADVOCACY).order_by("pk")
                if (c.pk * 37) % 100 < REFERRED_PERCENT]
    if not referrers or not referees:
        return 0
    events = []
    for referee in referees:
        referrer = referrers[(referee.pk * 7) % len(referrers)]
        referee.referred_by = referrer
        joined = referee.created_at
        events += [
            _event(referrer, REFERRAL_LINK_OPENED_EVENT, joined - timedelta(hours=2),
                   {"opened_by": referee.external_id}, f"referral-link:{referee.external_id}"),
            _event(referrer, REFERRAL_SIGNUP_EVENT, joined,
                   {"referred_customer": referee.external_id}, f"referral:{referee.external_id}"),
        ]
        if referee.stage in CONVERTED_STAGES:
            revenue = float(REVENUE_BASE + referee.pk % REVENUE_SPREAD)
            events.append(_event(
                referrer, REFERRAL_CONVERTED_EVENT, min(joined + timedelta(days=3), now),
                {"referred_customer": referee.external_id, "revenue": revenue},
                f"referral-converted:{referee.external_id}"))
    Customer.objects.bulk_update(referees, ["referred_by"], batch_size=500)
    Event.objects.bulk_create(events, batch_size=500, ignore_conflicts=True)
    # A referrer was last seen no earlier than their last referral event, as ingestion keeps it.
    latest = {}
    for event in events:
        latest[event.customer.pk] = max(latest.get(event.customer.pk, event.occurred_at),
                                        event.occurred_at)
    seen = [r for r in referrers if r.pk in latest and latest[r.pk] > (r.last_seen_at or since)]
    for referrer in seen:
        referrer.last_seen_at = latest[referrer.pk]
    Customer.objects.bulk_update(seen, ["last_seen_at"], batch_size=500)
    return len(referees)


def _event(customer, name: str, at: datetime, properties: dict, client_event_id: str) -> Event:
    return Event(customer=customer, name=name, occurred_at=at, received_at=at,
                 properties=properties, client_event_id=client_event_id)


def history_exists() -> bool:
    return Send.objects.filter(source=HISTORY_SOURCE).exists()


def history_seed(*, now: datetime | None = None) -> tuple[datetime, int] | None:
    """Create the demo campaigns' past runs once. Returns (first day, sends created), or None
    when the history is there already or no demo campaign exists."""
    if history_exists():
        return None
    now = now or timezone.now().replace(microsecond=0)
    campaigns = list(Campaign.objects.filter(name__in=PLANS).order_by("pk"))
    if not campaigns:
        return None
    first_run = _run_time(now, HISTORY_WEEKS)
    sends = 0
    with transaction.atomic():
        referrals_seed(now=now, since=first_run)
        for index, campaign in enumerate(campaigns):
            step = campaign.steps.filter(kind=Step.Kind.SEND).order_by("position").first()
            if step is None or step.template_id is None:
                continue
            for week in range(HISTORY_WEEKS):
                at = _run_time(now, HISTORY_WEEKS - week) + timedelta(hours=index)
                _run(campaign, step, PLANS[campaign.name], week, at, dead_tokens=index == 0)
                sends += 1
    return first_run, sends


def _run_time(now: datetime, weeks_ago: int) -> datetime:
    return (now - timedelta(weeks=weeks_ago)).replace(hour=9, minute=0, second=0)


def _run(campaign: Campaign, step: Step, plan: Plan, week: int, at: datetime, *,
         dead_tokens: bool) -> None:
    send = Send.objects.create(
        template_id=step.template_id, customer_ids=[], source=HISTORY_SOURCE,
        status=Send.Status.DONE, created_at=at, started_at=at, finished_at=at + timedelta(
            minutes=2))
    StepSend.objects.create(step=step, campaign=campaign, send=send, created_at=at)
    window = campaign.goal_window or timedelta(days=2)
    adapt = connection.ops.adapt_datetimefield_value
    params = {
        "campaign": campaign.pk, "send": send.pk, "week": week, "reach": plan.reach,
        "dead_token_weeks": DEAD_TOKEN_WEEKS,
        "first_dead_token_week": HISTORY_WEEKS - DEAD_TOKEN_WEEKS,
        "holdout": int(campaign.holdout_percent or 0), "last_customer": LAST_HISTORY_CUSTOMER,
        "entered": adapt(at - timedelta(minutes=5)), "exited": adapt(at + window),
        "at": adapt(at), "sent": adapt(at + timedelta(seconds=30)),
        "received": adapt(at + timedelta(minutes=1)), "opened": adapt(at + timedelta(hours=1)),
        "received_pct": RECEIVED_PERCENT, "opened_pct": plan.opened,
        "converted": adapt(at + timedelta(hours=5)), "converted_pct": plan.converted,
        "revenue": bool(campaign.goal_revenue_property), "revenue_base": REVENUE_BASE,
        "revenue_spread": REVENUE_SPREAD,
    }
    with connection.cursor() as cursor:
        # The stages are this module's constants, never input: written into the SQL.
        stages = ", ".join(f"'{stage}'" for stage in plan.stages)
        cursor.execute(_ENROLL_SQL.format(stages=stages), params)
        cursor.execute(_DELIVERIES_SQL, params)
        if dead_tokens:
            cursor.execute(_DEAD_TOKENS_SQL, params)
        if campaign.goal_event_name and plan.converted:
            cursor.execute(_CONVERSIONS_SQL, params)
        if campaign.goal_event_name and plan.holdout_converted:
            cursor.execute(_UNCREDITED_CONVERSIONS_SQL,
                           {**params, "converted_pct": plan.holdout_converted})

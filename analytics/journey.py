"""Selectors for the journey map (lifecycle stages) and delivery health.

Entries, exits and the transition matrix come from the daily rollups. The median time in stage
and the campaigns preceding forward transitions need each customer's own sequence, so they
read the raw transitions of the range (indexed by customer and time)."""

import statistics
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import Count, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from analytics.models import DeliveryDay, RollupState, TransitionDay
from audiences.models import Customer, Stage, StageTransition
from campaigns.models import Campaign
from notifications.models import Delivery, Device

STAGES = list(Stage.values)  # in journey order: awareness first, advocacy last
STAGE_RANK = {stage: rank for rank, stage in enumerate(STAGES)}
DEFAULT_ATTRIBUTION_WINDOW = timedelta(days=7)
DEAD_TOKEN = "dead_token"


@dataclass
class StageSummary:
    stage: str
    label: str
    customers_now: int
    entries: int
    exits: int
    entries_per_day: list[int]  # aligned with JourneyMap.days
    exits_per_day: list[int]
    median_seconds: float | None  # of stays that ended in the range

    @property
    def median_days(self) -> float | None:
        return None if self.median_seconds is None else self.median_seconds / 86400


@dataclass
class CampaignAttribution:
    campaign_id: int
    campaign_name: str
    to_stage: str
    transitions: int


@dataclass
class JourneyMap:
    since: date
    until: date
    attribution_window: timedelta
    days: list[date]
    stages: list[StageSummary]
    matrix: dict[str, dict[str, int]]  # matrix[from_stage][to_stage]
    forward_transitions: int
    campaigns: list[CampaignAttribution]  # most transitions first
    computed_at: datetime | None = None
    advocacy_inflow: dict[str, int] = field(default_factory=dict)  # moves in, by cause


def computed_at() -> datetime | None:
    """When the rollups every report reads were last refreshed (None: never)."""
    return RollupState.objects.filter(pk=1).values_list("refreshed_at", flat=True).first()


@contextmanager
def _without_jit():
    """PostgreSQL's JIT compiles these correlated subqueries for ~0.8 s to save milliseconds
    (it judges by the row estimate): off for this transaction only."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def _day(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    return (datetime.combine(since, time.min, tzinfo=UTC),
            datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC))


def journey_map(*, since, until, attribution_window=DEFAULT_ATTRIBUTION_WINDOW) -> JourneyMap:
    """Per stage: customers now, entries and exits per day, median time in stage; the
    stage-to-stage matrix; and the campaigns whose message a customer got within
    ``attribution_window`` before moving forward (the last such message gets the credit)."""
    since, until = _day(since), _day(until)
    days = [since + timedelta(days=n) for n in range((until - since).days + 1)]
    index = {day: n for n, day in enumerate(days)}
    matrix = {a: dict.fromkeys(STAGES, 0) for a in STAGES}
    entries = {s: [0] * len(days) for s in STAGES}
    exits = {s: [0] * len(days) for s in STAGES}
    rows = TransitionDay.objects.filter(day__gte=since, day__lte=until).values(
        "day", "from_stage", "to_stage").annotate(n=Sum("transitions"))
    for row in rows:
        a, b, n = row["from_stage"], row["to_stage"], row["n"]
        if a in matrix and b in matrix:
            matrix[a][b] += n
            entries[b][index[row["day"]]] += n
            exits[a][index[row["day"]]] += n
    now = dict(Customer.objects.values("stage").annotate(n=Count("id")).values_list("stage", "n"))
    medians = median_seconds_in_stage(since=since, until=until)
    stages = [
        StageSummary(stage, label, now.get(stage, 0), sum(entries[stage]), sum(exits[stage]),
                     entries[stage], exits[stage], medians.get(stage))
        for stage, label in Stage.choices
    ]
    forward = sum(matrix[a][b] for a in STAGES for b in STAGES if STAGE_RANK[b] > STAGE_RANK[a])
    return JourneyMap(since, until, attribution_window, days, stages, matrix, forward,
                      campaigns_before_forward(since=since, until=until,
                                               window=attribution_window), computed_at(),
                      stage_inflow(stage=Stage.ADVOCACY, since=since, until=until))


def stage_inflow(*, stage: str, since: date, until: date) -> dict[str, int]:
    """Moves into ``stage`` in the range by cause: the stage rule's name (e.g. "Referral
    sign-up", "Referral sent"), or the recorded cause of a move no rule made (by hand, an
    import), most first."""
    start, end = _bounds(since, until)
    rows = (StageTransition.objects.filter(to_stage=stage, at__gte=start, at__lt=end)
            .annotate(why=Coalesce("rule__name", "cause")).values("why")
            .annotate(n=Count("id")).values_list("why", "n"))
    return _by_count(dict(rows))


# Each exit in the range, with when the customer entered that stage: their previous transition,
# or their creation for the stage they started in. An erased customer's moves still count in
# the matrix, but their stays are unknown.
# Both look-ups are by index (customer, at) and primary key; COALESCE reads the customer only
# for stays that began at sign-up.
_STAYS_SQL = """
SELECT t.from_stage AS stage, t.at AS left_at,
       COALESCE((SELECT p.at FROM audiences_stagetransition p
                 WHERE p.customer_id = t.customer_id AND p.at <= t.at
                   AND (p.at < t.at OR p.id < t.id)
                 ORDER BY p.at DESC, p.id DESC LIMIT 1),
                (SELECT c.created_at FROM audiences_customer c WHERE c.id = t.customer_id))
           AS entered_at
FROM audiences_stagetransition t
WHERE t.at >= %s AND t.at < %s AND t.customer_id IS NOT NULL
"""


def median_seconds_in_stage(*, since: date, until: date) -> dict[str, float]:
    """Median length of the stays in each stage that ended in since..until, in seconds."""
    start, end = _bounds(since, until)
    params = [connection.ops.adapt_datetimefield_value(start),
              connection.ops.adapt_datetimefield_value(end)]
    with _without_jit(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"""SELECT stage, percentile_cont(0.5) WITHIN GROUP
                        (ORDER BY EXTRACT(EPOCH FROM (left_at - entered_at)))
                    FROM ({_STAYS_SQL}) stays GROUP BY stage""", params)
            return {stage: float(median) for stage, median in cursor.fetchall()}
        # SQLite has no percentile_cont: the durations come back and Python takes the median.
        cursor.execute(
            f"""SELECT stage, (julianday(left_at) - julianday(entered_at)) * 86400.0
                FROM ({_STAYS_SQL}) stays""", params)
        durations: dict[str, list[float]] = {}
        for stage, seconds in cursor.fetchall():
            durations.setdefault(stage, []).append(seconds)
    return {stage: statistics.median(values) for stage, values in durations.items()}


def _forward_q() -> Q:
    q = Q(pk__in=[])
    for a in STAGES:
        for b in STAGES:
            if STAGE_RANK[b] > STAGE_RANK[a]:
                q |= Q(from_stage=a, to_stage=b)
    return q


def campaigns_before_forward(*, since: date, until: date,
                             window: timedelta) -> list[CampaignAttribution]:
    start, end = _bounds(since, until)
    last_campaign = Delivery.objects.filter(
        customer_id=OuterRef("customer_id"), status=Delivery.Status.SENT,
        sent_at__lte=OuterRef("at"), sent_at__gt=OuterRef("at") - window,
        send__step_send__isnull=False,
    ).order_by("-sent_at", "-id").values("send__step_send__campaign_id")[:1]
    rows = (StageTransition.objects.filter(_forward_q(), at__gte=start, at__lt=end)
            .annotate(campaign_id=Subquery(last_campaign)).filter(campaign_id__isnull=False)
            .values("campaign_id", "to_stage").annotate(n=Count("id")))
    with _without_jit():
        rows = list(rows)
    names = dict(Campaign.objects.filter(pk__in={r["campaign_id"] for r in rows}).values_list(
        "pk", "name"))
    found = [CampaignAttribution(r["campaign_id"], names.get(r["campaign_id"], ""),
                                 r["to_stage"], r["n"]) for r in rows]
    return sorted(found, key=lambda a: (-a.transitions, a.campaign_id, STAGE_RANK[a.to_stage]))


@dataclass
class HealthDay:
    day: date
    sent: int
    failed: int
    skipped: int
    dead_tokens: int  # failures for a dead token: each deactivated that device


@dataclass
class DeliveryHealth:
    since: date
    until: date
    sent: int
    failed: int
    skipped: int
    failed_by_reason: dict[str, int]
    skipped_by_reason: dict[str, int]
    days: list[HealthDay]
    inactive_devices: int  # now, whatever the range
    inactive_by_reason: dict[str, int]
    computed_at: datetime | None = None

    @property
    def dead_tokens(self) -> int:
        """Devices deactivated by a dead-token failure in the range."""
        return sum(day.dead_tokens for day in self.days)

    @property
    def failure_rate(self) -> float | None:
        attempted = self.sent + self.failed
        return self.failed / attempted if attempted else None


def delivery_health(*, since, until) -> DeliveryHealth:
    """Every send's deliveries (campaign or not) over since..until: failures and skips by
    reason, per day with the dead tokens that deactivated devices."""
    since, until = _day(since), _day(until)
    rows = DeliveryDay.objects.filter(day__gte=since, day__lte=until).values(
        "day", "status", "reason").annotate(n=Sum("deliveries"))
    by_day = {since + timedelta(days=n): HealthDay(since + timedelta(days=n), 0, 0, 0, 0)
              for n in range((until - since).days + 1)}
    failed_by, skipped_by = {}, {}
    for row in rows:
        day, n, reason = by_day[row["day"]], row["n"], row["reason"] or "unknown"
        if row["status"] == "sent":
            day.sent += n
        elif row["status"] == "failed":
            day.failed += n
            failed_by[reason] = failed_by.get(reason, 0) + n
            day.dead_tokens += n if reason == DEAD_TOKEN else 0
        elif row["status"] == "skipped":
            day.skipped += n
            skipped_by[reason] = skipped_by.get(reason, 0) + n
    inactive = dict(Device.objects.filter(is_active=False).values("deactivated_reason")
                    .annotate(n=Count("id")).values_list("deactivated_reason", "n"))
    days = list(by_day.values())
    return DeliveryHealth(
        since, until, sum(d.sent for d in days), sum(d.failed for d in days),
        sum(d.skipped for d in days), _by_count(failed_by), _by_count(skipped_by), days,
        sum(inactive.values()), _by_count({k or "unknown": v for k, v in inactive.items()}),
        computed_at(),
    )


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))

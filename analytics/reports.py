"""Selectors for campaign reports, lift and rankings, read from the daily rollups.

Shared by the admin report pages, the dashboard, the exports and the analyst API. Dates are UTC
calendar days, both ends included; ``None`` means "from the first day" or "to the last". The
journey map and delivery health live in analytics.journey and are re-exported here."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import Q, Sum

from analytics.journey import (
    DeliveryHealth,
    JourneyMap,
    computed_at,
    delivery_health,
    journey_map,
)
from analytics.models import AudienceDay, ConversionDay, DeliveryDay, EnrollmentDay
from analytics.stats import Comparison, compare_proportions, rate
from campaigns.models import Campaign, Step, Variant

__all__ = [
    "CampaignReport", "DeliveryHealth", "JourneyMap", "Lift", "campaign_lift", "campaign_report",
    "campaign_report_days", "computed_at", "delivery_health", "journey_map", "top_campaigns",
]

TREATMENT, HOLDOUT, CONTROL = "treatment", "holdout", "control"
NO_DEVICE = "none"  # the platform of customers skipped before a device was chosen
PENDING_STATUSES = {"queued", "sending"}


@dataclass
class Counts:
    """Delivery numbers of one slice of a report. Deliveries are per device; ``targeted`` is
    customers (None for a platform: customers are counted per send, not per device)."""

    targeted: int | None = 0
    sent: int = 0
    delivered: int = 0  # the app reported receipt
    failed: int = 0
    skipped: int = 0
    pending: int = 0  # queued or being sent
    opened: int = 0
    conversions: int = 0  # treatment conversions credited to a message sent here
    revenue: Decimal = Decimal("0")  # of those conversions
    # Treatment customers who converted without ever being targeted (no message was credited):
    # counted apart, never inside a rate.
    untargeted_conversions: int = 0
    untargeted_revenue: Decimal = Decimal("0")
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    skipped_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def open_rate(self) -> float | None:
        return rate(self.opened, self.sent)

    @property
    def delivery_rate(self) -> float | None:
        return rate(self.delivered, self.sent)

    @property
    def conversion_rate(self) -> float | None:
        """Conversions credited to a message / customers targeted (once per send). The one
        definition used by every slice, page, API response and export."""
        return rate(self.conversions, self.targeted)

    def add_conversions(self, n: int, revenue, *, targeted: bool) -> None:
        if targeted:
            self.conversions += n
            self.revenue += Decimal(revenue or 0)
        else:
            self.untargeted_conversions += n
            self.untargeted_revenue += Decimal(revenue or 0)

    def add_deliveries(self, row: dict) -> None:
        n, status, reason = row["n"], row["status"], row["reason"] or "unknown"
        self.delivered += row["delivered"]
        self.opened += row["opened"]
        if status == "sent":
            self.sent += n
        elif status == "failed":
            self.failed += n
            self.failed_by_reason[reason] = self.failed_by_reason.get(reason, 0) + n
        elif status == "skipped":
            self.skipped += n
            self.skipped_by_reason[reason] = self.skipped_by_reason.get(reason, 0) + n
        elif status in PENDING_STATUSES:
            self.pending += n


@dataclass
class Slice:
    """A labelled row of a report: a step, a variant or a platform."""

    key: str
    label: str
    counts: Counts
    step_id: int | None = None
    variant_id: int | None = None


@dataclass
class AbTest:
    """The variants of one send step compared on ``metric`` ("conversion": conversions per
    targeted customer, when the campaign has a goal; else "open": opens per sent message).
    The leader is called the winner only when it beats the runner-up with p < 0.05."""

    step_id: int
    step_label: str
    metric: str
    variants: list[Slice]
    leader: str | None
    runner_up: str | None
    comparison: Comparison | None
    winner: str | None


@dataclass
class CampaignReport:
    campaign_id: int
    campaign_name: str
    since: date | None
    until: date | None
    totals: Counts
    enrolled: dict[str, int]  # entered in the range, by group
    steps: list[Slice]
    variants: list[Slice]
    platforms: list[Slice]
    ab_tests: list[AbTest]
    computed_at: datetime | None = None  # when the rollups were last refreshed


def _day_filter(since: date | None, until: date | None) -> Q:
    q = Q()
    if since is not None:
        q &= Q(day__gte=_as_day(since))
    if until is not None:
        q &= Q(day__lte=_as_day(until))
    return q


def _as_day(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def _delivery_rows(q: Q, *keys: str) -> list[dict]:
    return list(
        DeliveryDay.objects.filter(q).values(*keys, "status", "reason").annotate(
            n=Sum("deliveries"), delivered=Sum("delivered"), opened=Sum("opened"))
    )


def campaign_report(*, campaign, since=None, until=None) -> CampaignReport:
    """Targeted, sent, delivered, failed and skipped (by reason), opened, conversions and
    revenue for ``campaign`` over since..until: in total, per step, per A/B variant (with a
    significance test) and per platform."""
    q = Q(campaign_id=campaign.pk) & _day_filter(since, until)
    totals, steps, variants, platforms = Counts(), defaultdict(Counts), defaultdict(Counts), \
        defaultdict(Counts)
    for row in _delivery_rows(q, "step_id", "variant_id", "kind"):
        for counts in (totals, steps[row["step_id"]], platforms[row["kind"] or NO_DEVICE]):
            counts.add_deliveries(row)
        if row["variant_id"] is not None:
            variants[row["variant_id"]].add_deliveries(row)
    for row in AudienceDay.objects.filter(q).values("step_id", "variant_id").annotate(
            targeted=Sum("targeted")):
        totals.targeted += row["targeted"]
        steps[row["step_id"]].targeted += row["targeted"]
        if row["variant_id"] is not None:
            variants[row["variant_id"]].targeted += row["targeted"]
    _add_conversions(q, totals, steps, variants, platforms)
    enrolled = {row["group"]: row["entered"] for row in EnrollmentDay.objects.filter(q).values(
        "group").annotate(entered=Sum("entered"))}
    step_slices, variant_slices = _labelled(campaign, steps, variants)
    for counts in platforms.values():
        counts.targeted = None  # no data: a customer's devices may be of several platforms
    platform_slices = [Slice(kind, kind, counts) for kind, counts in sorted(platforms.items())]
    return CampaignReport(
        campaign.pk, campaign.name, since, until, totals, enrolled, step_slices, variant_slices,
        platform_slices, _ab_tests(campaign, step_slices, variant_slices), computed_at(),
    )


def _treatment_conversions(q: Q, key: str) -> list[dict]:
    """Treatment conversions and revenue per ``key``, split by whether a message was credited
    (``targeted``)."""
    rows = ConversionDay.objects.filter(q, group=TREATMENT).values(key).annotate(
        n=Sum("conversions"), revenue=Sum("revenue"))
    return [{**row, "targeted": True} for row in rows.filter(step_id__isnull=False)] + [
        {**row, "targeted": False} for row in rows.filter(step_id__isnull=True)]


def _add_conversions(q: Q, totals: Counts, steps, variants, platforms) -> None:
    rows = ConversionDay.objects.filter(q, group=TREATMENT).values(
        "step_id", "variant_id", "kind").annotate(n=Sum("conversions"), revenue=Sum("revenue"))
    for row in rows:
        if row["step_id"] is None:  # no message credited: the customer was never targeted
            totals.add_conversions(row["n"], row["revenue"], targeted=False)
            continue
        targets = [totals, platforms[row["kind"] or NO_DEVICE], steps[row["step_id"]]]
        if row["variant_id"] is not None:
            targets.append(variants[row["variant_id"]])
        for counts in targets:
            counts.add_conversions(row["n"], row["revenue"], targeted=True)


def _labelled(campaign, steps: dict, variants: dict) -> tuple[list[Slice], list[Slice]]:
    step_names = {s.pk: str(s) for s in Step.objects.filter(campaign=campaign)}
    variant_rows = {v.pk: v for v in Variant.objects.filter(step__campaign=campaign)}
    step_slices = [
        Slice(f"step:{pk}", step_names.get(pk, "(deleted step)" if pk else "(no step)"),
              counts, step_id=pk)
        for pk, counts in sorted(steps.items(), key=lambda item: _step_order(item[0], step_names))
    ]
    variant_slices = []
    for pk, counts in variants.items():
        variant = variant_rows.get(pk)
        variant_slices.append(Slice(
            f"variant:{pk}", variant.name if variant else "(deleted variant)", counts,
            step_id=variant.step_id if variant else None, variant_id=pk,
        ))
    variant_slices.sort(key=lambda s: (s.step_id or 0, s.label))
    return step_slices, variant_slices


def _step_order(pk, step_names: dict) -> tuple:
    names = list(step_names)
    return (names.index(pk) if pk in step_names else len(names), pk or 0)


def _ab_tests(campaign, steps: list[Slice], variants: list[Slice]) -> list[AbTest]:
    metric = "conversion" if campaign.goal_event_name else "open"
    labels = {s.step_id: s.label for s in steps}
    tests = []
    for step_id in sorted({v.step_id for v in variants if v.step_id is not None}):
        arms = [v for v in variants if v.step_id == step_id]
        if len(arms) < 2:
            continue
        tests.append(_ab_test(step_id, labels.get(step_id, ""), metric, arms))
    return tests


def _successes_trials(arm: Slice, metric: str) -> tuple[int, int]:
    if metric == "conversion":
        return arm.counts.conversions, arm.counts.targeted
    return arm.counts.opened, arm.counts.sent


def _ab_test(step_id: int, label: str, metric: str, arms: list[Slice]) -> AbTest:
    ranked = sorted(arms, key=lambda arm: rate(*_successes_trials(arm, metric)) or 0.0,
                    reverse=True)
    leader, runner_up = ranked[0], ranked[1]
    comparison = compare_proportions(*_successes_trials(leader, metric),
                                     *_successes_trials(runner_up, metric))
    winner = leader.label if comparison.significant and comparison.absolute_lift else None
    return AbTest(step_id, label, metric, arms, leader.label, runner_up.label, comparison,
                  winner)


@dataclass
class GroupRate:
    group: str
    enrolled: int
    conversions: int
    revenue: Decimal

    @property
    def rate(self) -> float | None:
        return rate(self.conversions, self.enrolled)


@dataclass
class Lift:
    """Treatment (customers the campaign messages) against its holdout and against the global
    control group: rates, absolute and relative lift, 95% interval and p-value."""

    campaign_id: int
    groups: dict[str, GroupRate]
    vs_holdout: Comparison | None
    vs_control: Comparison | None
    computed_at: datetime | None = None


def campaign_lift(*, campaign) -> Lift:
    """Conversion rate per group = conversions / customers enrolled in that group, over the
    campaign's whole life."""
    q = Q(campaign_id=campaign.pk)
    enrolled = dict(EnrollmentDay.objects.filter(q).values("group").annotate(
        n=Sum("entered")).values_list("group", "n"))
    groups = {}
    for row in ConversionDay.objects.filter(q).values("group").annotate(
            n=Sum("conversions"), revenue=Sum("revenue")):
        groups[row["group"]] = GroupRate(row["group"], enrolled.get(row["group"], 0), row["n"],
                                         Decimal(row["revenue"] or 0))
    for group in (TREATMENT, HOLDOUT, CONTROL):
        groups.setdefault(group, GroupRate(group, enrolled.get(group, 0), 0, Decimal("0")))
    treatment = groups[TREATMENT]

    def against(other: GroupRate) -> Comparison | None:
        if not (treatment.enrolled and other.enrolled):
            return None
        return compare_proportions(treatment.conversions, treatment.enrolled,
                                   other.conversions, other.enrolled)

    return Lift(campaign.pk, groups, against(groups[HOLDOUT]), against(groups[CONTROL]),
                computed_at())


@dataclass
class CampaignRank:
    campaign_id: int
    name: str
    counts: Counts
    enrolled: int  # treatment enrollments that entered in the range


def top_campaigns(*, since=None, until=None, limit: int = 10) -> list[CampaignRank]:
    """Campaigns by treatment conversions, then revenue, then opens, over since..until."""
    q = Q(campaign_id__isnull=False) & _day_filter(since, until)
    counts: dict[int, Counts] = defaultdict(Counts)
    for row in _delivery_rows(q, "campaign_id"):
        counts[row["campaign_id"]].add_deliveries(row)
    for row in AudienceDay.objects.filter(q).values("campaign_id").annotate(n=Sum("targeted")):
        counts[row["campaign_id"]].targeted += row["n"]
    for row in _treatment_conversions(q, "campaign_id"):
        counts[row["campaign_id"]].add_conversions(row["n"], row["revenue"],
                                                   targeted=row["targeted"])
    enrolled = dict(EnrollmentDay.objects.filter(q, group=TREATMENT).values(
        "campaign_id").annotate(n=Sum("entered")).values_list("campaign_id", "n"))
    ranked = sorted(counts.items(), key=lambda item: (
        -item[1].conversions, -item[1].revenue, -item[1].opened, item[0]))[:limit]
    names = dict(Campaign.objects.filter(pk__in=[pk for pk, _ in ranked]).values_list(
        "pk", "name"))
    return [CampaignRank(pk, names.get(pk, f"(deleted campaign {pk})"), c, enrolled.get(pk, 0))
            for pk, c in ranked]


@dataclass
class ReportDay:
    day: date
    counts: Counts


def campaign_report_days(*, campaign, since=None, until=None, after: date | None = None,
                         limit: int = 100) -> list[ReportDay]:
    """The campaign's totals per day, oldest first, at most ``limit`` days after ``after``
    (keyset pagination: pass the last day of a page to get the next)."""
    q = Q(campaign_id=campaign.pk) & _day_filter(since, until)
    if after is not None:
        q &= Q(day__gt=after)
    days = list(DeliveryDay.objects.filter(q).values_list("day").union(
        ConversionDay.objects.filter(q).values_list("day")).order_by("day")[:limit])
    days = [row[0] for row in days]
    if not days:
        return []
    q &= Q(day__lte=days[-1])
    by_day: dict[date, Counts] = {day: Counts() for day in days}
    for row in _delivery_rows(q, "day"):
        by_day[row["day"]].add_deliveries(row)
    for row in AudienceDay.objects.filter(q).values("day").annotate(n=Sum("targeted")):
        by_day[row["day"]].targeted += row["n"]
    for row in _treatment_conversions(q, "day"):
        by_day[row["day"]].add_conversions(row["n"], row["revenue"], targeted=row["targeted"])
    return [ReportDay(day, by_day[day]) for day in days]

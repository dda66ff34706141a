"""The referral report: asks, link opens, sign-ups, referred customers' conversions, top
referrers, the share of new customers who came by referral, the weekly viral coefficient, and
the campaigns that asked. Shared by the admin page, the analyst API and the exports.

Definitions (README "Referral report"), over UTC days since..until:
- asks sent / opened: messages sent and opened by referral campaigns (stage advocacy, or goal
  referral_signup), from the delivery rollups;
- links opened, sign-ups, referred conversions (+ revenue): referral_link_opened,
  referral_signup and referral_converted events in the range (they sit on the referrer);
- new customers: customers created in the range; by referral: those of them with a referrer;
- per week (Monday to Sunday): referrers = customers whose code brought a sign-up that week;
  sign-ups per referrer = sign-ups / referrers; conversion share = the week's referred
  customers who have converted since (referral_converted, up to now) / sign-ups; the viral
  coefficient K = sign-ups per referrer x conversion share."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    OuterRef,
    Q,
    Sum,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Concat, Substr, TruncWeek

from analytics.journey import computed_at
from analytics.models import ConversionDay, DeliveryDay
from analytics.stats import rate
from audiences.models import Customer, Event, Stage
from audiences.services import (
    REFERRAL_CONVERTED_EVENT,
    REFERRAL_LINK_OPENED_EVENT,
    REFERRAL_SIGNUP_EVENT,
)
from campaigns.models import Campaign

TOP_REFERRERS = 10
SIGNUP_ID_PREFIX, CONVERTED_ID_PREFIX = "referral:", "referral-converted:"  # client event ids


@dataclass
class ReferralWeek:
    week: date  # its Monday
    referrers: int
    signups: int
    converted: int  # of the week's sign-ups, those who converted since

    @property
    def signups_per_referrer(self) -> float | None:
        return rate(self.signups, self.referrers)

    @property
    def conversion_share(self) -> float | None:
        return rate(self.converted, self.signups)

    @property
    def k_factor(self) -> float | None:
        if self.signups_per_referrer is None or self.conversion_share is None:
            return None
        return self.signups_per_referrer * self.conversion_share


@dataclass
class Referrer:
    customer_id: int
    external_id: str
    name: str
    signups: int
    converted: int
    revenue: Decimal


@dataclass
class ReferralCampaign:
    campaign_id: int
    name: str
    asks_sent: int
    asks_opened: int
    signups: int | None  # treatment conversions, when the goal is referral_signup

    @property
    def open_rate(self) -> float | None:
        return rate(self.asks_opened, self.asks_sent)


@dataclass
class ReferralReport:
    since: date
    until: date
    asks_sent: int
    asks_opened: int
    links_opened: int
    signups: int
    referred_conversions: int
    referred_revenue: Decimal
    new_customers: int
    referred_new_customers: int
    weeks: list[ReferralWeek]
    top_referrers: list[Referrer]
    campaigns: list[ReferralCampaign]
    computed_at: datetime | None = None

    @property
    def ask_open_rate(self) -> float | None:
        return rate(self.asks_opened, self.asks_sent)

    @property
    def referral_share(self) -> float | None:
        """Of the customers created in the range, the share who came by referral."""
        return rate(self.referred_new_customers, self.new_customers)


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    return (datetime.combine(since, time.min, tzinfo=UTC),
            datetime.combine(until + timedelta(days=1), time.min, tzinfo=UTC))


def referral_campaign_ids() -> list[int]:
    return list(Campaign.objects.filter(
        Q(stage=Stage.ADVOCACY) | Q(goal_event_name=REFERRAL_SIGNUP_EVENT)).values_list(
        "pk", flat=True))


def referral_report(*, since: date, until: date) -> ReferralReport:
    start, end = _bounds(since, until)
    events = Event.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
    counts = dict(events.filter(name__in=[REFERRAL_LINK_OPENED_EVENT, REFERRAL_SIGNUP_EVENT,
                                          REFERRAL_CONVERTED_EVENT])
                  .values("name").annotate(n=Count("id")).values_list("name", "n"))
    revenue = events.filter(name=REFERRAL_CONVERTED_EVENT).aggregate(total=Sum(_revenue()))
    new = Customer.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        n=Count("id"), referred=Count("id", filter=Q(referred_by__isnull=False)))
    campaigns = referral_campaigns(since=since, until=until)
    return ReferralReport(
        since, until, sum(c.asks_sent for c in campaigns), sum(c.asks_opened for c in campaigns),
        counts.get(REFERRAL_LINK_OPENED_EVENT, 0), counts.get(REFERRAL_SIGNUP_EVENT, 0),
        counts.get(REFERRAL_CONVERTED_EVENT, 0), _money(revenue["total"]), new["n"],
        new["referred"], referral_weeks(since=since, until=until),
        top_referrers(since=since, until=until), campaigns, computed_at(),
    )


def _revenue():
    return Cast(KT("properties__revenue"), DecimalField(max_digits=16, decimal_places=2))


def _money(value) -> Decimal:
    return Decimal(value or 0).quantize(Decimal("0.01"))


def _converted_since():
    """Whether a referral_signup event's referee has converted since (up to now)."""
    return Exists(Event.objects.filter(
        customer_id=OuterRef("customer_id"), name=REFERRAL_CONVERTED_EVENT,
        client_event_id=Concat(Value(CONVERTED_ID_PREFIX),
                               Substr(OuterRef("client_event_id"), len(SIGNUP_ID_PREFIX) + 1))))


def referral_weeks(*, since: date, until: date) -> list[ReferralWeek]:
    """Every week (Monday first) overlapping since..until, sign-ups counted inside the range."""
    start, end = _bounds(since, until)
    rows = (Event.objects.filter(name=REFERRAL_SIGNUP_EVENT, occurred_at__gte=start,
                                 occurred_at__lt=end)
            .annotate(week=TruncWeek("occurred_at"), converted=_converted_since())
            .values("week").annotate(signups=Count("id"),
                                     referrers=Count("customer_id", distinct=True),
                                     converted_n=Count("id", filter=Q(converted=True))))
    found = {_as_date(r["week"]): r for r in rows}
    monday = since - timedelta(days=since.weekday())
    weeks = []
    while monday <= until:
        row = found.get(monday, {})
        weeks.append(ReferralWeek(monday, row.get("referrers", 0), row.get("signups", 0),
                                  row.get("converted_n", 0)))
        monday += timedelta(days=7)
    return weeks


def _as_date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def top_referrers(*, since: date, until: date, limit: int = TOP_REFERRERS) -> list[Referrer]:
    """Customers whose code brought the most sign-ups in the range, with how many of those
    converted since and the revenue of referral conversions recorded in the range."""
    start, end = _bounds(since, until)
    rows = list(Event.objects.filter(name=REFERRAL_SIGNUP_EVENT, occurred_at__gte=start,
                                     occurred_at__lt=end)
                .annotate(converted=_converted_since()).values("customer_id")
                .annotate(signups=Count("id"), converted_n=Count("id", filter=Q(converted=True)))
                .order_by("-signups", "-converted_n", "customer_id")[:limit])
    ids = [row["customer_id"] for row in rows]
    revenue = dict(Event.objects.filter(name=REFERRAL_CONVERTED_EVENT, customer_id__in=ids,
                                        occurred_at__gte=start, occurred_at__lt=end)
                   .values("customer_id").annotate(total=Sum(_revenue()))
                   .values_list("customer_id", "total"))
    people = {c.pk: c for c in Customer.objects.filter(pk__in=ids).only(
        "pk", "external_id", "first_name", "last_name")}
    return [Referrer(row["customer_id"], people[row["customer_id"]].external_id,
                     people[row["customer_id"]].full_name, row["signups"], row["converted_n"],
                     _money(revenue.get(row["customer_id"])))
            for row in rows if row["customer_id"] in people]


def referral_campaigns(*, since: date, until: date) -> list[ReferralCampaign]:
    """The campaigns that asked for referrals, with their asks sent and opened in the range
    and, when their goal is a sign-up, the sign-ups they earned."""
    campaigns = Campaign.objects.filter(pk__in=referral_campaign_ids()).order_by("pk")
    q = Q(campaign_id__in=[c.pk for c in campaigns], day__gte=since, day__lte=until)
    sent = dict(DeliveryDay.objects.filter(q, status="sent").values("campaign_id").annotate(
        n=Sum("deliveries")).values_list("campaign_id", "n"))
    opened = dict(DeliveryDay.objects.filter(q).values("campaign_id").annotate(
        n=Sum("opened")).values_list("campaign_id", "n"))
    earned = dict(ConversionDay.objects.filter(q, group="treatment").values(
        "campaign_id").annotate(n=Sum("conversions")).values_list("campaign_id", "n"))
    return [ReferralCampaign(
        c.pk, c.name, sent.get(c.pk, 0), opened.get(c.pk, 0),
        earned.get(c.pk, 0) if c.goal_event_name == REFERRAL_SIGNUP_EVENT else None)
        for c in campaigns]

"""The panels of the admin's home page: the running campaigns with today's numbers, what needs
attention, and the journey map. Each shows only to staff allowed to see what it shows.

Today's numbers come from the daily rollups (refreshed every few minutes), so the page reads a
few hundred rollup rows, never the delivery log; attention reads small tables (sends, outages)
and today's rollup rows."""

from datetime import timedelta

from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils import timezone

from analytics import dashboard_charts as charts
from analytics.journey import computed_at
from analytics.models import ConversionDay, DeliveryDay, TransitionDay
from analytics.reports import TREATMENT
from analytics.roles import DASHBOARD_PERMISSION
from audiences.models import Customer, Stage
from campaigns.models import Campaign, Step
from notifications.models import Delivery, ProviderOutage, Send

RUNNING_SHOWN = 20  # campaigns listed on the home page; the rest are one click away
ATTENTION_SHOWN = 5  # rows per kind of problem
JOURNEY_DAYS = 30
# Customers per stage is a GROUP BY over every customer (~0.2 s at a million): shared by
# everyone opening the home page for a minute.
STAGES_CACHE_KEY, STAGES_CACHE_SECONDS = "admin-home:customers-per-stage", 60
STEP_FAILURES = (Delivery.Reason.RENDER_ERROR, Delivery.Reason.PROVIDER_REJECTED,
                 Delivery.Reason.RETRIES_EXHAUSTED)  # a step's own fault, not the customer's


def running_panel(request):
    if not request.user.has_perm("campaigns.view_campaign"):
        return None
    running = list(Campaign.objects.filter(status=Campaign.Status.RUNNING)
                   .order_by("-launched_at", "-pk")[:RUNNING_SHOWN])
    today = timezone.now().date()
    ids = [c.pk for c in running]
    delivered = {row["campaign_id"]: row for row in DeliveryDay.objects.filter(
        day=today, campaign_id__in=ids).values("campaign_id").annotate(
        sent=Sum("deliveries", filter=Q(status=Delivery.Status.SENT)), opened=Sum("opened"))}
    converted = dict(ConversionDay.objects.filter(
        day=today, campaign_id__in=ids, group=TREATMENT).values("campaign_id").annotate(
        n=Sum("conversions")).values_list("campaign_id", "n"))
    rows = [{
        "campaign": c, "url": reverse("admin:campaigns_campaign_change", args=[c.pk]),
        "sent": (delivered.get(c.pk) or {}).get("sent") or 0,
        "opened": (delivered.get(c.pk) or {}).get("opened") or 0,
        "converted": converted.get(c.pk, 0),
    } for c in running]
    total = Campaign.objects.filter(status=Campaign.Status.RUNNING).count()
    return "admin/home/running.html", {"rows": rows, "total": total, "today": today,
                                       "computed_at": computed_at()}


def attention_panel(request):
    if not (request.user.has_perm("campaigns.view_campaign")
            or request.user.has_perm("notifications.view_send")):
        return None
    today = timezone.now().date()
    paused = list(Send.objects.filter(status=Send.Status.PAUSED).select_related("template")
                  .order_by("-created_at")[:ATTENTION_SHOWN])
    outages = list(ProviderOutage.objects.order_by("started_at")[:ATTENTION_SHOWN])
    failures = list(DeliveryDay.objects.filter(day=today, status=Delivery.Status.FAILED)
                    .values("reason").annotate(n=Sum("deliveries")).order_by("-n"))
    reasons = dict(Delivery.Reason.choices)
    failing = _failing_steps(today)
    items = len(paused) + len(outages) + len(failures) + len(failing)
    return "admin/home/attention.html", {
        "paused": paused, "outages": outages, "failing": failing, "items": items,
        "failures": [(reasons.get(row["reason"], row["reason"] or "Unknown"), row["n"])
                     for row in failures],
    }


def _failing_steps(today) -> list[dict]:
    """Steps whose messages failed today through their own fault (the template does not
    render, the provider refuses the message), most failures first."""
    rows = list(DeliveryDay.objects.filter(day=today, step_id__isnull=False,
                                           reason__in=STEP_FAILURES).values("step_id")
                .annotate(n=Sum("deliveries")).order_by("-n")[:ATTENTION_SHOWN])
    steps = Step.objects.select_related("campaign").in_bulk([row["step_id"] for row in rows])
    return [{"step": steps[row["step_id"]], "failures": row["n"],
             "url": reverse("admin:campaigns_campaign_change",
                            args=[steps[row["step_id"]].campaign_id])}
            for row in rows if row["step_id"] in steps]


def journey_panel(request):
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        return None
    until = timezone.now().date()
    since = until - timedelta(days=JOURNEY_DAYS - 1)
    now = cache.get_or_set(STAGES_CACHE_KEY, _customers_per_stage, STAGES_CACHE_SECONDS)
    index = {stage: n for n, stage in enumerate(Stage.values)}
    moves = [(index[row["from_stage"]], index[row["to_stage"]], row["n"])
             for row in TransitionDay.objects.filter(day__gte=since, day__lte=until)
             .values("from_stage", "to_stage").annotate(n=Sum("transitions"))
             if row["n"] and row["from_stage"] in index and row["to_stage"] in index
             and row["from_stage"] != row["to_stage"]]
    chart = charts.flow([(label, now.get(stage, 0)) for stage, label in Stage.choices], moves,
                        title=f"Customers in each stage now, and their moves in the last "
                              f"{JOURNEY_DAYS} days")
    return "admin/home/journey.html", {"chart": chart, "days": JOURNEY_DAYS}


def _customers_per_stage() -> dict[str, int]:
    return dict(Customer.objects.values("stage").annotate(n=Count("id")).order_by()
                .values_list("stage", "n"))


HOME_PANELS = (running_panel, attention_panel, journey_panel)

"""The analytics dashboard in the admin: where customers are in their journey and how they
move, the campaigns that earned most, and the health of deliveries, over a range of days.

It reads the report selectors (analytics.reports), which read the daily rollups; charts are
SVG drawn here (analytics.dashboard_charts), so the page loads nothing from elsewhere."""

from datetime import date, timedelta

from django import forms
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from analytics import dashboard_charts as charts
from analytics.admin_common import counts_row
from analytics.reports import delivery_health, journey_map, top_campaigns

DASHBOARD_DAYS = 30  # the range shown when none is chosen
MAX_DAYS = 366  # a chart point per day: a year at most
TOP_LIMIT = 10


class DashboardForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        since, until = self.days(data)
        if until < since:
            self.add_error("until", "The last day is before the first day.")
        elif (until - since).days >= MAX_DAYS:
            self.add_error("since", f"Choose at most {MAX_DAYS} days.")
        return data

    @staticmethod
    def days(data: dict) -> tuple[date, date]:
        until = data.get("until") or timezone.now().date()
        since = data.get("since") or until - timedelta(days=DASHBOARD_DAYS - 1)
        return since, until


def dashboard_context(request) -> dict:
    form = DashboardForm(request.GET or None)
    since, until = DashboardForm.days(form.cleaned_data if form.is_bound and form.is_valid()
                                      else {})
    journey = journey_map(since=since, until=until)
    health = delivery_health(since=since, until=until)
    top = top_campaigns(since=since, until=until, limit=TOP_LIMIT)
    return {
        "form": form, "since": since, "until": until, "journey": journey, "health": health,
        "top": [(rank, _report_url(rank.campaign_id), counts_row(rank.name, rank.counts))
                for rank in top],
        "matrix": _matrix(journey), "charts": _charts(journey, health, top),
    }


def _report_url(campaign_id: int) -> str | None:
    """The campaign's report page, when the report pages are installed."""
    try:
        return reverse("analytics_reports:campaign", args=[campaign_id])
    except NoReverseMatch:
        return None


def _matrix(journey) -> dict:
    """The transition matrix as rows of (count, shade 0..1) for the table's heat map."""
    labels = [(s.stage, s.label) for s in journey.stages]
    top = max((n for row in journey.matrix.values() for n in row.values()), default=0) or 1
    rows = [(label, [(journey.matrix[a][b], round(journey.matrix[a][b] / top, 2))
                     for b, _ in labels]) for a, label in labels]
    return {"labels": [label for _, label in labels], "rows": rows}


def _charts(journey, health, top) -> dict:
    index = {s.stage: n for n, s in enumerate(journey.stages)}
    series = {s.stage: f"series-{n % 5}" for n, s in enumerate(journey.stages)}
    moves = [(index[a], index[b], n) for a, row in journey.matrix.items()
             for b, n in row.items() if n and a != b and a in index and b in index]
    days = [d.day for d in health.days]
    return {
        "stages_now": charts.bars([(s.label, s.customers_now) for s in journey.stages],
                                  title="Customers in each stage now"),
        "flow": charts.flow([(s.label, s.customers_now) for s in journey.stages], moves,
                            title="Moves between stages in the range"),
        "entries": charts.lines(journey.days, [
            charts.Series(s.label, s.entries_per_day, series[s.stage]) for s in journey.stages
        ], title="Entries into each stage per day"),
        "exits": charts.lines(journey.days, [
            charts.Series(s.label, s.exits_per_day, series[s.stage]) for s in journey.stages
        ], title="Exits from each stage per day"),
        "advocacy_inflow": charts.bars(list(journey.advocacy_inflow.items()),
                                       title="Moves into advocacy by cause", css="series-4"),
        "top": charts.bars([(rank.name, rank.counts.conversions) for rank in top],
                           title="Conversions by campaign", css="series-1"),
        "sent": charts.lines(days, [
            charts.Series("Sent", [d.sent for d in health.days], "series-1"),
            charts.Series("Failed", [d.failed for d in health.days], "series-3"),
            charts.Series("Skipped", [d.skipped for d in health.days], "series-4"),
        ], title="Deliveries per day"),
        "failed": charts.bars(list(health.failed_by_reason.items()),
                              title="Failures by reason", css="series-3"),
        "skipped": charts.bars(list(health.skipped_by_reason.items()),
                               title="Skipped by reason", css="series-4"),
        "dead_tokens": charts.columns(days, [d.dead_tokens for d in health.days],
                                      title="Tokens deactivated per day (dead tokens)"),
    }

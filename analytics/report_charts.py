"""The campaign report page's charts, drawn on the server like the dashboard's
(analytics.dashboard_charts): targeted, sent, opened and converted per day, revenue per day,
and each send step's funnel."""

from datetime import date, timedelta

from analytics import dashboard_charts as charts
from analytics.reports import Counts, campaign_report_days

MAX_CHART_DAYS = 366  # a point per day: the chart shows at most the last year of the range
PAGE_DAYS = 1000  # days read per keyset page


def report_days(campaign, since: date | None, until: date | None) -> list[tuple[date, Counts]]:
    """Every day from the range's first day with data (or ``since``) to its last (or
    ``until``), at most MAX_CHART_DAYS ending at the last, days without data as zeros."""
    found, after = {}, None
    while True:
        page = campaign_report_days(campaign=campaign, since=since, until=until, after=after,
                                    limit=PAGE_DAYS)
        found.update({day.day: day.counts for day in page})
        if len(page) < PAGE_DAYS:
            break
        after = page[-1].day
    if not found:
        return []
    last = until or max(found)
    first = max(since or min(found), last - timedelta(days=MAX_CHART_DAYS - 1))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return [(day, found.get(day, Counts())) for day in days]


def campaign_charts(days: list[tuple[date, Counts]], steps) -> dict:
    axis = [day for day, _ in days]
    series = [("Targeted", "targeted", "series-0"), ("Sent", "sent", "series-1"),
              ("Opened", "opened", "series-2"), ("Converted", "conversions", "series-4")]
    return {
        "days": charts.lines(axis, [charts.Series(label, [getattr(c, name) for _, c in days], css)
                                    for label, name, css in series],
                             title="Targeted, sent, opened and converted per day", width=620),
        "revenue": charts.lines(axis, [charts.Series(
            "Revenue", [int(round(c.revenue)) for _, c in days], "series-3")],
            title="Revenue per day (rounded)", width=620),
        "funnels": [(step.label, charts.bars(
            [("Targeted", step.counts.targeted), ("Sent", step.counts.sent),
             ("Delivered", step.counts.delivered), ("Opened", step.counts.opened),
             ("Converted", step.counts.conversions)],
            title=f"Funnel of {step.label}", css="series-1")) for step in steps],
    }

"""Reports as files (CSV, XLSX, JSON) through django-import-export resources, export only.

Reports are small (a row per day, step, variant, platform or stage), so django-import-export
builds them in memory; raw deliveries and events go through analytics.exports instead.

- ``campaign_report`` with a campaign: its totals, then a row per day, step, A/B variant and
  platform (the ``breakdown`` column says which). Without a campaign: one row per campaign
  with activity in the range, best first (as top_campaigns ranks them).
- ``journey_map``: a row per stage (customers now, entries, exits, median days in stage), per
  stage and day (entries, exits), per stage-to-stage transition, and per campaign that preceded
  forward moves (the ``section`` column says which). It covers every customer: no campaign."""

from datetime import date, timedelta

from import_export import fields, resources, widgets
from import_export.formats.base_formats import CSV, JSON, XLSX

from analytics.exports import ExportError, ExportFilter
from analytics.reports import campaign_report, campaign_report_days, journey_map, top_campaigns
from campaigns.models import Campaign

REPORT_NAMES = ("campaign_report", "journey_map")
REPORT_FORMATS = {"csv": CSV, "json": JSON, "xlsx": XLSX}
ALL_CAMPAIGNS_LIMIT = 10_000  # campaigns listed when no campaign is chosen
JOURNEY_DEFAULT_DAYS = 30  # a journey map without a start covers the last month

COUNT_COLUMNS = (
    ("targeted", widgets.IntegerWidget), ("sent", widgets.IntegerWidget),
    ("delivered", widgets.IntegerWidget), ("failed", widgets.IntegerWidget),
    ("skipped", widgets.IntegerWidget), ("pending", widgets.IntegerWidget),
    ("opened", widgets.IntegerWidget), ("open_rate", widgets.FloatWidget),
    ("conversions", widgets.IntegerWidget), ("conversion_rate", widgets.FloatWidget),
    ("revenue", widgets.DecimalWidget), ("failed_by_reason", widgets.CharWidget),
    ("skipped_by_reason", widgets.CharWidget),
)


def _resource(name: str, doc: str, columns) -> type[resources.Resource]:
    """A Resource class with one read-only field per (column, widget class), in that order."""
    attrs = {column: fields.Field(attribute=column, column_name=column, widget=widget(),
                                  readonly=True) for column, widget in columns}
    attrs["Meta"] = type("Meta", (), {"export_order": [column for column, _ in columns]})
    attrs["__doc__"] = doc
    attrs["__module__"] = __name__
    return type(name, (resources.Resource,), attrs)


CampaignReportResource = _resource(
    "CampaignReportResource", "A campaign's report rows: totals, days, steps, variants, platforms.",
    (("campaign_id", widgets.IntegerWidget), ("campaign", widgets.CharWidget),
     ("since", widgets.DateWidget), ("until", widgets.DateWidget),
     ("breakdown", widgets.CharWidget), ("key", widgets.CharWidget),
     ("label", widgets.CharWidget), *COUNT_COLUMNS),
)
JourneyMapResource = _resource(
    "JourneyMapResource", "The journey map's rows: stages, days, transitions, campaigns.",
    (("section", widgets.CharWidget), ("since", widgets.DateWidget),
     ("until", widgets.DateWidget), ("stage", widgets.CharWidget), ("day", widgets.DateWidget),
     ("from_stage", widgets.CharWidget), ("to_stage", widgets.CharWidget),
     ("campaign_id", widgets.IntegerWidget), ("campaign", widgets.CharWidget),
     ("customers_now", widgets.IntegerWidget), ("entries", widgets.IntegerWidget),
     ("exits", widgets.IntegerWidget), ("median_days", widgets.FloatWidget),
     ("transitions", widgets.IntegerWidget)),
)


def _reasons(by_reason: dict[str, int]) -> str:
    return "; ".join(f"{reason}: {n}" for reason, n in by_reason.items())


def _counts(counts) -> dict:
    return {
        "targeted": counts.targeted, "sent": counts.sent, "delivered": counts.delivered,
        "failed": counts.failed, "skipped": counts.skipped, "pending": counts.pending,
        "opened": counts.opened, "open_rate": counts.open_rate,
        "conversions": counts.conversions, "conversion_rate": counts.conversion_rate,
        "revenue": counts.revenue, "failed_by_reason": _reasons(counts.failed_by_reason),
        "skipped_by_reason": _reasons(counts.skipped_by_reason),
    }


def campaign_report_rows(filters: ExportFilter) -> list[dict]:
    since, until = filters.since, filters.until
    period = {"since": since, "until": until}
    if filters.campaign_id is None:
        return [{"campaign_id": rank.campaign_id, "campaign": rank.name, **period,
                 "breakdown": "campaign", "key": str(rank.campaign_id), "label": rank.name,
                 **_counts(rank.counts), "conversion_rate": rank.conversion_rate}
                for rank in top_campaigns(since=since, until=until, limit=ALL_CAMPAIGNS_LIMIT)]
    campaign = Campaign.objects.filter(pk=filters.campaign_id).first()
    if campaign is None:
        raise ExportError(f"There is no campaign {filters.campaign_id}.")
    report = campaign_report(campaign=campaign, since=since, until=until)
    head = {"campaign_id": campaign.pk, "campaign": campaign.name, **period}
    rows = [{**head, "breakdown": "total", "key": "", "label": "All",
             **_counts(report.totals), "conversion_rate": report.conversion_rate}]
    rows += [{**head, "breakdown": "day", "key": day.day.isoformat(),
              "label": day.day.isoformat(), **_counts(day.counts)}
             for day in _all_days(campaign, since, until, campaign_report_days)]
    for breakdown, slices in (("step", report.steps), ("variant", report.variants),
                              ("platform", report.platforms)):
        rows += [{**head, "breakdown": breakdown, "key": s.key, "label": s.label,
                  **_counts(s.counts)} for s in slices]
    return rows


def _all_days(campaign, since, until, campaign_report_days) -> list:
    """Every day of the report, following the selector's keyset pages."""
    days, after = [], None
    while True:
        page = campaign_report_days(campaign=campaign, since=since, until=until, after=after)
        days += page
        if not page:
            return days
        after = page[-1].day


def journey_map_rows(filters: ExportFilter) -> list[dict]:
    if filters.campaign_id is not None:
        raise ExportError("The journey map covers every customer: it takes no campaign.")
    until = filters.until or date.today()
    since = filters.since or until - timedelta(days=JOURNEY_DEFAULT_DAYS - 1)
    journey = journey_map(since=since, until=until)
    period = {"since": since, "until": until}
    rows = [{"section": "stage", **period, "stage": s.stage, "customers_now": s.customers_now,
             "entries": s.entries, "exits": s.exits, "median_days": s.median_days}
            for s in journey.stages]
    rows += [{"section": "day", **period, "stage": s.stage, "day": day,
              "entries": s.entries_per_day[n], "exits": s.exits_per_day[n]}
             for s in journey.stages for n, day in enumerate(journey.days)]
    rows += [{"section": "transition", **period, "from_stage": a, "to_stage": b,
              "transitions": n}
             for a, row in journey.matrix.items() for b, n in row.items() if n]
    rows += [{"section": "campaign", **period, "to_stage": c.to_stage,
              "campaign_id": c.campaign_id, "campaign": c.campaign_name,
              "transitions": c.transitions} for c in journey.campaigns]
    return rows


REPORTS = {
    "campaign_report": (CampaignReportResource, campaign_report_rows),
    "journey_map": (JourneyMapResource, journey_map_rows),
}


def report_export(*, name: str, file_format: str, filters: ExportFilter) -> bytes:
    """The report as the bytes of a CSV, JSON or XLSX file."""
    if name not in REPORTS:
        raise ExportError(f"Unknown report {name!r}; choose one of: {', '.join(REPORTS)}.")
    if file_format not in REPORT_FORMATS:
        raise ExportError(f"Unknown format {file_format!r}; choose one of: "
                          f"{', '.join(REPORT_FORMATS)}.")
    resource_class, rows = REPORTS[name]
    file_type = REPORT_FORMATS[file_format]()
    dataset = resource_class().export(
        rows(filters), force_native_type=file_type.is_binary())  # numbers stay numbers in XLSX
    data = file_type.export_data(dataset)
    return data if isinstance(data, bytes) else data.encode()


def report_content_type(file_format: str) -> str:
    return REPORT_FORMATS[file_format]().get_content_type()

"""Reports as files (CSV, XLSX, JSON) through django-import-export resources, export only.

Reports are small (a row per day, step, variant, platform or stage), so django-import-export
builds them in memory; raw deliveries and events go through analytics.exports instead.

- ``campaign_report`` with a campaign: its totals, then a row per day, step, A/B variant and
  platform (the ``breakdown`` column says which). Without a campaign: one row per campaign
  with activity in the range, best first (as top_campaigns ranks them).
- ``journey_map``: a row per stage (customers now, entries, exits, median days in stage), per
  stage and day (entries, exits), per stage-to-stage transition, and per campaign that preceded
  forward moves (the ``section`` column says which). It covers every customer: no campaign."""

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from import_export import fields, resources, widgets
from import_export.formats.base_formats import CSV, JSON, XLSX

from analytics.exports import ExportError, ExportFilter
from analytics.journey import stage_inflow
from analytics.referrals import referral_report
from analytics.reports import (
    campaign_lift,
    campaign_report,
    campaign_report_days,
    computed_at,
    journey_map,
    top_campaigns,
)
from audiences.models import Stage
from campaigns.models import Campaign

REPORT_NAMES = ("campaign_report", "journey_map", "referrals")
REPORT_FORMATS = {"csv": CSV, "json": JSON, "xlsx": XLSX}
ALL_CAMPAIGNS_LIMIT = 10_000  # campaigns listed when no campaign is chosen
JOURNEY_DEFAULT_DAYS = 30  # a journey map without a start covers the last month
REFERRALS_DEFAULT_DAYS = 12 * 7  # a referral report without a start: the last twelve weeks

COUNT_COLUMNS = (
    ("targeted", widgets.IntegerWidget), ("sent", widgets.IntegerWidget),
    ("delivered", widgets.IntegerWidget), ("failed", widgets.IntegerWidget),
    ("skipped", widgets.IntegerWidget), ("pending", widgets.IntegerWidget),
    ("opened", widgets.IntegerWidget), ("open_rate", widgets.FloatWidget),
    ("conversions", widgets.IntegerWidget), ("conversion_rate", widgets.FloatWidget),
    ("revenue", widgets.DecimalWidget), ("untargeted_conversions", widgets.IntegerWidget),
    ("untargeted_revenue", widgets.DecimalWidget), ("failed_by_reason", widgets.CharWidget),
    ("skipped_by_reason", widgets.CharWidget),
)
# Lift rows: the campaign's groups (enrolled, conversions, revenue, conversions per enrolled
# customer) and the treatment's comparisons with the holdout and the control group.
LIFT_COLUMNS = (
    ("enrolled", widgets.IntegerWidget), ("group_rate", widgets.FloatWidget),
    ("absolute_lift", widgets.FloatWidget), ("relative_lift", widgets.FloatWidget),
    ("ci_low", widgets.FloatWidget), ("ci_high", widgets.FloatWidget),
    ("p_value", widgets.FloatWidget),
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
     ("label", widgets.CharWidget), *COUNT_COLUMNS, *LIFT_COLUMNS,
     ("computed_at", widgets.CharWidget)),
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

_I, _F, _C, _D = (widgets.IntegerWidget, widgets.FloatWidget, widgets.CharWidget,
                  widgets.DecimalWidget)
ReferralsResource = _resource(
    "ReferralsResource", "The referral report's rows: totals, weeks, referrers, campaigns, "
    "moves into advocacy by cause.",
    (("section", _C), ("since", widgets.DateWidget), ("until", widgets.DateWidget),
     ("week", widgets.DateWidget), ("key", _C), ("label", _C), ("asks_sent", _I),
     ("asks_opened", _I), ("open_rate", _F), ("links_opened", _I), ("signups", _I),
     ("referrers", _I), ("signups_per_referrer", _F), ("converted", _I),
     ("conversion_share", _F), ("k_factor", _F), ("referred_conversions", _I),
     ("referred_revenue", _D), ("new_customers", _I), ("referred_new_customers", _I),
     ("referral_share", _F), ("transitions", _I), ("computed_at", _C)),
)


def _reasons(by_reason: dict[str, int]) -> str:
    return "; ".join(f"{reason}: {n}" for reason, n in by_reason.items())


def _counts(counts) -> dict:
    """A slice's numbers; None where there is no data (a rate of nothing, customers per
    platform)."""
    return {
        "targeted": counts.targeted, "sent": counts.sent,
        "delivered": counts.delivered, "failed": counts.failed, "skipped": counts.skipped,
        "pending": counts.pending, "opened": counts.opened, "open_rate": counts.open_rate,
        "conversions": counts.conversions,
        "conversion_rate": counts.conversion_rate,
        "revenue": counts.revenue, "untargeted_conversions": counts.untargeted_conversions,
        "untargeted_revenue": counts.untargeted_revenue,
        "failed_by_reason": _reasons(counts.failed_by_reason),
        "skipped_by_reason": _reasons(counts.skipped_by_reason),
    }


def _stamp(moment: datetime | None) -> str | None:
    """When the numbers were computed, as ISO 8601 text in UTC (Excel cells hold no zone)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else None


def _lift_rows(head: dict, lift) -> list[dict]:
    rows = [{**head, "breakdown": "lift", "key": g.group, "label": g.group,
             "enrolled": g.enrolled, "conversions": g.conversions, "revenue": g.revenue,
             "group_rate": g.rate} for g in lift.groups.values()]
    for key, comparison in (("vs_holdout", lift.vs_holdout), ("vs_control", lift.vs_control)):
        if comparison is not None:
            rows.append({**head, "breakdown": "lift", "key": key, "label": key,
                         "absolute_lift": comparison.absolute_lift,
                         "relative_lift": comparison.relative_lift,
                         "ci_low": comparison.ci_low, "ci_high": comparison.ci_high,
                         "p_value": comparison.p_value})
    return rows


def campaign_report_rows(filters: ExportFilter) -> list[dict]:
    since, until = filters.since, filters.until
    period = {"since": since, "until": until}
    if filters.campaign_id is None:
        stamp = {"computed_at": _stamp(computed_at())}
        return [{"campaign_id": rank.campaign_id, "campaign": rank.name, **period, **stamp,
                 "breakdown": "campaign", "key": str(rank.campaign_id), "label": rank.name,
                 **_counts(rank.counts)}
                for rank in top_campaigns(since=since, until=until, limit=ALL_CAMPAIGNS_LIMIT)]
    campaign = Campaign.objects.filter(pk=filters.campaign_id).first()
    if campaign is None:
        raise ExportError(f"There is no campaign {filters.campaign_id}.")
    report = campaign_report(campaign=campaign, since=since, until=until)
    head = {"campaign_id": campaign.pk, "campaign": campaign.name, **period,
            "computed_at": _stamp(report.computed_at)}
    rows = [{**head, "breakdown": "total", "key": "", "label": "All", **_counts(report.totals)}]
    rows += [{**head, "breakdown": "day", "key": day.day.isoformat(),
              "label": day.day.isoformat(), **_counts(day.counts)}
             for day in _all_days(campaign, since, until, campaign_report_days)]
    for breakdown, slices in (("step", report.steps), ("variant", report.variants),
                              ("platform", report.platforms)):
        rows += [{**head, "breakdown": breakdown, "key": s.key, "label": s.label,
                  **_counts(s.counts)} for s in slices]
    return rows + _lift_rows(head, campaign_lift(campaign=campaign))


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
    rows += [{"section": "advocacy_inflow", **period, "to_stage": "advocacy", "campaign": cause,
              "transitions": n} for cause, n in journey.advocacy_inflow.items()]
    return rows


def referrals_rows(filters: ExportFilter) -> list[dict]:
    if filters.campaign_id is not None:
        raise ExportError("The referral report covers every referral campaign: it takes no "
                          "campaign.")
    until = filters.until or date.today()
    since = filters.since or until - timedelta(days=REFERRALS_DEFAULT_DAYS - 1)
    report = referral_report(since=since, until=until)
    head = {"since": since, "until": until, "computed_at": _stamp(report.computed_at)}
    rows = [{**head, "section": "total", "label": "All", "asks_sent": report.asks_sent,
             "asks_opened": report.asks_opened, "open_rate": report.ask_open_rate,
             "links_opened": report.links_opened, "signups": report.signups,
             "referred_conversions": report.referred_conversions,
             "referred_revenue": report.referred_revenue, "new_customers": report.new_customers,
             "referred_new_customers": report.referred_new_customers,
             "referral_share": report.referral_share}]
    rows += [{**head, "section": "week", "week": w.week, "key": w.week.isoformat(),
              "referrers": w.referrers, "signups": w.signups,
              "signups_per_referrer": w.signups_per_referrer, "converted": w.converted,
              "conversion_share": w.conversion_share, "k_factor": w.k_factor}
             for w in report.weeks]
    rows += [{**head, "section": "referrer", "key": r.external_id, "label": r.name,
              "signups": r.signups, "converted": r.converted, "referred_revenue": r.revenue}
             for r in report.top_referrers]
    rows += [{**head, "section": "campaign", "key": str(c.campaign_id), "label": c.name,
              "asks_sent": c.asks_sent, "asks_opened": c.asks_opened, "open_rate": c.open_rate,
              "signups": c.signups} for c in report.campaigns]
    inflow = stage_inflow(stage=Stage.ADVOCACY, since=since, until=until)
    rows += [{**head, "section": "advocacy_inflow", "label": cause, "transitions": n}
             for cause, n in inflow.items()]
    return rows


REPORTS = {
    "campaign_report": (CampaignReportResource, campaign_report_rows),
    "journey_map": (JourneyMapResource, journey_map_rows),
    "referrals": (ReferralsResource, referrals_rows),
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
    # Numbers stay numbers in XLSX and JSON; CSV writes them as text anyway. No data is an
    # empty cell in CSV and XLSX (as on the report page) and null in JSON.
    native = file_format != "csv"
    dataset = resource_class().export(rows(filters), force_native_type=native)
    if file_format == "json":
        records = [dict(zip(dataset.headers, row, strict=True)) for row in dataset]
        return json.dumps(records, default=_json_value, ensure_ascii=False).encode()
    data = file_type.export_data(dataset)
    return data if isinstance(data, bytes) else data.encode()


def _json_value(value):
    """Decimals (revenue) as JSON numbers, days and times as ISO 8601 text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def report_content_type(file_format: str) -> str:
    return REPORT_FORMATS[file_format]().get_content_type()

"""The referral report page in the admin's look (/analytics/reports/referrals/): asks, link
opens, sign-ups, referred customers' conversions, the weekly viral coefficient, top referrers,
the campaigns that asked, and the moves into advocacy by cause."""

from datetime import timedelta

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.utils import timezone

from analytics import dashboard_charts as charts
from analytics.admin_common import DateRangeForm, pct, require_view
from analytics.journey import stage_inflow
from analytics.referrals import referral_report
from audiences.models import Stage

DEFAULT_DAYS = 12 * 7  # the page opens on the last twelve weeks
MAX_DAYS = 366


def _range(form) -> tuple:
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    until = data.get("until") or timezone.now().date()
    since = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
    return max(since, until - timedelta(days=MAX_DAYS - 1)), until


@staff_member_required
def referrals_view(request):
    require_view(request)
    form = DateRangeForm(request.GET or None)
    context = {**admin.site.each_context(request), "title": "Referrals", "form": form}
    if form.is_bound and not form.is_valid():
        return render(request, "analytics/referrals.html", context, status=400)
    since, until = _range(form)
    report = referral_report(since=since, until=until)
    inflow = stage_inflow(stage=Stage.ADVOCACY, since=since, until=until)
    context.update(report=report, computed_at=report.computed_at, inflow=inflow,
                   rates=_rates(report), weeks=_weeks(report), charts=_charts(report, inflow))
    return render(request, "analytics/referrals.html", context)


def _rates(report) -> dict:
    return {"ask_open_rate": pct(report.ask_open_rate), "share": pct(report.referral_share),
            "revenue": f"{report.referred_revenue:,.2f}"}


def _weeks(report) -> list[dict]:
    return [{"week": w.week, "referrers": f"{w.referrers:,}", "signups": f"{w.signups:,}",
             "converted": f"{w.converted:,}", "per_referrer": _number(w.signups_per_referrer),
             "share": pct(w.conversion_share), "k": _number(w.k_factor)}
            for w in report.weeks]


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _charts(report, inflow: dict) -> dict:
    weeks = [w.week for w in report.weeks]
    return {
        "k": charts.lines(weeks, [charts.Series(
            "K-factor", [round(w.k_factor or 0, 2) for w in report.weeks], "series-1")],
            title="Viral coefficient (K) per week", legend_totals=False),
        "signups": charts.lines(weeks, [
            charts.Series("Sign-ups", [w.signups for w in report.weeks], "series-0"),
            charts.Series("Referrers", [w.referrers for w in report.weeks], "series-2"),
            charts.Series("Converted", [w.converted for w in report.weeks], "series-4"),
        ], title="Referral sign-ups per week"),
        "inflow": charts.bars(list(inflow.items()), title="Moves into advocacy by cause",
                              css="series-4"),
        "top": charts.bars([(r.name or r.external_id, r.signups) for r in report.top_referrers],
                           title="Top referrers by sign-ups", css="series-0"),
    }

"""Report pages in the admin's look: the list of campaigns with their numbers, and one
campaign's report (date range, per step, variant, platform and reason, A/B tests, lift).

Served at /analytics/reports/ (journeyhub/urls.py) for staff who may view campaigns. Link to a
campaign's report with ``reverse("analytics_reports:campaign", args=[campaign.pk])``."""

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from analytics.admin_common import NO_DATA, DateRangeForm, counts_row, pct, require_view
from analytics.admin_referrals import referrals_view
from analytics.push_kinds import campaign_push_kinds
from analytics.report_charts import campaign_charts, report_days
from analytics.reports import campaign_lift, campaign_report, computed_at, top_campaigns
from analytics.rollups import rollups_refresh
from analytics.stats import Comparison
from campaigns.models import Campaign

app_name = "analytics_reports"
INDEX_DAYS = 30  # the campaign list shows the last month
INDEX_LIMIT = 200


def comparison_row(label: str, comparison: Comparison | None) -> dict | None:
    if comparison is None:
        return None
    return {
        "label": label, "rate_a": pct(comparison.rate_a, 2), "rate_b": pct(comparison.rate_b, 2),
        "absolute": pct(comparison.absolute_lift, 2), "relative": pct(comparison.relative_lift),
        "ci": f"{pct(comparison.ci_low, 2)} to {pct(comparison.ci_high, 2)}",
        "p_value": _p_value(comparison.p_value),
        "significant": comparison.significant,
    }


def _p_value(p: float | None) -> str:
    if p is None:
        return NO_DATA
    return "< 0.0001" if p < 0.0001 else f"{p:.4f}"


@staff_member_required
def campaign_report_view(request, campaign_id: int):
    require_view(request)
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    form = DateRangeForm(request.GET or None)
    context = {**admin.site.each_context(request), "title": f"Report: {campaign.name}",
               "campaign": campaign, "form": form}
    if form.is_bound and not form.is_valid():
        return render(request, "analytics/campaign_report.html", context, status=400)
    since, until = (form.cleaned_data.get("since"), form.cleaned_data.get("until")) \
        if form.is_bound else (None, None)
    report = campaign_report(campaign=campaign, since=since, until=until)
    lift = campaign_lift(campaign=campaign)
    days = report_days(campaign, since, until)
    context.update(_report_context(report, lift), charts=campaign_charts(days, report.steps),
                   exports=_export_links(campaign, since or (days[0][0] if days else None),
                                         until or timezone.now().date()),
                   campaign_url=reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    context["push_kinds"] = campaign_push_kinds(campaign=campaign)
    return render(request, "analytics/campaign_report.html", context)


def _export_links(campaign, since, until) -> list[tuple[str, str]]:
    """The report as CSV, XLSX and JSON, over the page's range (from its first day with data
    when the range has no start)."""
    if since is None:
        return []
    base = reverse("admin:analytics_report_export")
    query = urlencode({"report": "campaign_report", "campaign": campaign.pk, "since": since,
                       "until": until, "export": "1"})
    return [(label, f"{base}?{query}&format={fmt}")
            for fmt, label in (("csv", "CSV"), ("xlsx", "Excel"), ("json", "JSON"))]


def _report_context(report, lift) -> dict:
    reasons = [("failed", reason, n) for reason, n in report.totals.failed_by_reason.items()]
    reasons += [("skipped", reason, n) for reason, n in report.totals.skipped_by_reason.items()]
    return {
        "report": report, "computed_at": report.computed_at,
        "totals_rows": [counts_row("All", report.totals)],
        "steps": [counts_row(s.label, s.counts) for s in report.steps],
        "variants": [counts_row(f"{v.label} ({_step_label(report, v.step_id)})", v.counts)
                     for v in report.variants],
        # Customers are counted per send, not per device: no "targeted" per platform.
        "platforms": [counts_row(p.label, p.counts)
                      for p in report.platforms],
        "reasons": sorted(reasons, key=lambda r: (r[0], -r[2], r[1])),
        "ab_tests": [{"test": t, "comparison": comparison_row(
            f"{t.leader} vs {t.runner_up}", t.comparison)} for t in report.ab_tests],
        "lift_groups": [
            {"group": g.group, "enrolled": f"{g.enrolled:,}", "conversions": f"{g.conversions:,}",
             "rate": pct(g.rate, 2), "revenue": f"{g.revenue:,.2f}"}
            for g in lift.groups.values()],
        "lift_rows": [row for row in (
            comparison_row("Treatment vs campaign holdout", lift.vs_holdout),
            comparison_row("Treatment vs global control", lift.vs_control)) if row],
    }


def _step_label(report, step_id) -> str:
    return next((s.label for s in report.steps if s.step_id == step_id), "")


@staff_member_required
def reports_index_view(request):
    require_view(request)
    until = timezone.now().date()
    since = until - timedelta(days=INDEX_DAYS - 1)
    ranked = top_campaigns(since=since, until=until, limit=INDEX_LIMIT)
    context = {
        **admin.site.each_context(request), "title": "Campaign reports",
        "since": since, "until": until,
        "rows": [{"campaign_id": r.campaign_id, **counts_row(r.name, r.counts)}
                 for r in ranked],
        "campaigns": Campaign.objects.order_by("-created_at", "-pk")[:INDEX_LIMIT],
        "computed_at": computed_at(),
    }
    return render(request, "analytics/reports_index.html", context)


@staff_member_required
@require_POST
def refresh_view(request):
    """Bring the rollups up to date now, then back to the page that asked."""
    require_view(request)
    rebuilt = rollups_refresh()
    if rebuilt is None:
        messages.info(request, "A refresh is running right now: its numbers show in a moment.")
    else:
        messages.success(request, f"Rollups refreshed ({rebuilt} day(s) rebuilt).")
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("analytics_reports:index")
    return redirect(target)


urlpatterns = [
    path("", reports_index_view, name="index"),
    path("refresh/", refresh_view, name="refresh"),
    path("referrals/", referrals_view, name="referrals"),
    path("campaigns/<int:campaign_id>/", campaign_report_view, name="campaign"),
]

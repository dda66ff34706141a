"""Analytics in the admin: the streaming export page (linked from the Delivery and Event lists),
report exports, and the dashboard (linked from the admin index).

The Delivery and Event admins belong to lower apps, which must not know about analytics, so the
pages are added to the admin site from here and the lists get their link from a template that
only staff allowed to export see."""

from datetime import timedelta

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from analytics.admin_home import HOME_PANELS
from analytics.dashboard import dashboard_context
from analytics.exports import (
    CONTENT_TYPES,
    DATASETS,
    ExportError,
    ExportFilter,
    export_filename,
    export_stream,
)
from analytics.resources import report_content_type, report_export
from analytics.roles import DASHBOARD_PERMISSION, EXPORT_PERMISSION
from audiences.models import Event
from campaigns.models import Campaign
from notifications.models import Delivery

for _panel in HOME_PANELS:  # the admin's home page (journeyhub.admin_site)
    admin.site.home_panel_add(_panel)

EXPORT_LIST_TEMPLATE = "admin/analytics/export_change_list.html"
DEFAULT_EXPORT_DAYS = 30  # the form starts with the last month


class RangeForm(forms.Form):
    """Format, days and campaign: what every export asks."""

    format = forms.ChoiceField(choices=[
        ("csv", "CSV"),
        ("json", "JSON (one array, an object per line)"),
        ("xlsx", "Excel (XLSX, at most 1,048,575 rows)"),
    ])
    all_time = forms.BooleanField(required=False, label="All time",
                                  help_text="Everything there is; the days below are ignored.")
    since = forms.DateField(widget=AdminDateWidget, required=False,
                            help_text="First day (UTC), included.")
    until = forms.DateField(widget=AdminDateWidget, required=False,
                            help_text="Last day (UTC), included.")
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.order_by("name"), required=False)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("all_time"):
            cleaned["since"] = cleaned["until"] = None
            return cleaned
        since, until = cleaned.get("since"), cleaned.get("until")
        for name in ("since", "until"):
            if cleaned.get(name) is None and name not in self.errors:
                self.add_error(name, "Choose a day, or tick “All time”.")
        if since and until and until < since:
            self.add_error("until", "The last day is before the first day.")
        return cleaned

    def export_filter(self) -> ExportFilter:
        data = self.cleaned_data
        campaign = data.get("campaign")
        return ExportFilter(since=data["since"], until=data["until"],
                            campaign_id=campaign.pk if campaign else None)


class ExportForm(RangeForm):
    dataset = forms.ChoiceField(label="Data", choices=[
        ("deliveries", "Deliveries (one row per send, customer and device)"),
        ("events", "Events"),
    ])
    field_order = ["dataset"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].help_text = (
            "Deliveries of this campaign's sends; events of its enrolled customers.")


class ReportExportForm(RangeForm):
    report = forms.ChoiceField(choices=[
        ("campaign_report", "Campaign report: totals, days, steps, A/B variants, platforms "
                            "(every campaign, a row each, when none is chosen)"),
        ("journey_map", "Journey map: stages, entries and exits per day, transitions, "
                        "campaigns before forward moves (every customer: no campaign)"),
        ("referrals", "Referrals: totals, the viral coefficient per week, top referrers, "
                      "campaigns that asked, moves into advocacy by cause (no campaign)"),
    ])
    field_order = ["report"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["format"].choices = [("csv", "CSV"), ("xlsx", "Excel (XLSX)"),
                                         ("json", "JSON")]


def _initial(request, **extra) -> dict:
    today = timezone.now().date()
    return {"format": "csv", "since": today - timedelta(days=DEFAULT_EXPORT_DAYS - 1),
            "until": today, **extra}


def _require_export_permission(request) -> None:
    if not request.user.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied


def export_view(request):
    """GET with ``export`` set streams the file; otherwise (or on a bad form) the form."""
    _require_export_permission(request)
    initial = _initial(request, dataset=request.GET.get("dataset", "deliveries"))
    form = ExportForm(request.GET if "export" in request.GET else None, initial=initial)
    if form.is_bound and form.is_valid():
        filters, file_format = form.export_filter(), form.cleaned_data["format"]
        dataset = DATASETS[form.cleaned_data["dataset"]]
        try:
            pieces = export_stream(dataset=dataset, file_format=file_format, filters=filters)
        except ExportError as error:
            form.add_error(None, str(error))
        else:
            return _attachment(pieces, file_format, export_filename(
                dataset_name=dataset.name, file_format=file_format, filters=filters))
    context = {**admin.site.each_context(request), "title": "Export (streaming)", "form": form}
    return TemplateResponse(request, "admin/analytics/export.html", context)


def _attachment(pieces, file_format: str, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(pieces, content_type=CONTENT_TYPES[file_format])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def dashboard_view(request):
    if not request.user.has_perm(DASHBOARD_PERMISSION):
        raise PermissionDenied
    context = {**admin.site.each_context(request), "title": "Analytics dashboard",
               **dashboard_context(request)}
    return TemplateResponse(request, "admin/analytics/dashboard.html", context)


def report_export_view(request):
    """Reports through django-import-export: small, so built whole and sent as one file."""
    _require_export_permission(request)
    initial = _initial(request, report=request.GET.get("report", "campaign_report"),
                       campaign=request.GET.get("campaign"))
    form = ReportExportForm(request.GET if "export" in request.GET else None, initial=initial)
    if form.is_bound and form.is_valid():
        name, file_format = form.cleaned_data["report"], form.cleaned_data["format"]
        filters = form.export_filter()
        try:
            data = report_export(name=name, file_format=file_format, filters=filters)
        except ExportError as error:
            form.add_error(None, str(error))
        else:
            response = HttpResponse(data, content_type=report_content_type(file_format))
            filename = export_filename(dataset_name=name, file_format=file_format,
                                       filters=filters)
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
            return response
    context = {**admin.site.each_context(request), "title": "Export a report", "form": form}
    return TemplateResponse(request, "admin/analytics/report_export.html", context)


def _with_analytics_urls(get_urls):
    def urls():
        return [
            path("analytics/export/", admin.site.admin_view(export_view),
                 name="analytics_export"),
            path("analytics/report-export/", admin.site.admin_view(report_export_view),
                 name="analytics_report_export"),
            path("analytics/dashboard/", admin.site.admin_view(dashboard_view),
                 name="analytics_dashboard"),
        ] + get_urls()

    return urls


admin.site.get_urls = _with_analytics_urls(admin.site.get_urls)

for _model in (Delivery, Event):
    _model_admin = admin.site.get_model_admin(_model)
    if _model_admin.change_list_template is None:  # keep a list page that has its own
        _model_admin.change_list_template = EXPORT_LIST_TEMPLATE

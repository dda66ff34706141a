"""Import jobs in the admin: the "Import customers" page (any size, run by a worker), each job's
progress page and its rejects download; and the Customers import's hand-off of big files,
which audiences calls through the hook onboarding registers in OnboardingConfig.ready()."""

import os
import tempfile

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from openpyxl import load_workbook

from onboarding import jobs
from onboarding.files import FileProblem, Mapping, file_format
from onboarding.models import FORMATS, ImportJob

PROGRESS_REFRESH_SECONDS = 2  # how often a running job's page reloads itself
MAPPING_MAX_BYTES = 1 << 20  # a mapping names columns and values: far smaller than this


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text="CSV or JSON Lines, UTF-8, with the columns of "
                                     "import_customers (README: Bringing customers in).")
    file_format = forms.ChoiceField(label="Format", required=False,
                                    choices=[("", "From the file name"), *FORMATS])
    mapping = forms.FileField(required=False, help_text=(
        "Optional: a JSON mapping of another system's columns and values, as "
        "import_customers --map takes."))
    dry_run = forms.BooleanField(required=False, help_text=(
        "Report what would be created, updated and refused; write nothing."))
    atomic = forms.BooleanField(required=False, help_text=(
        "All or nothing: one refused line and nothing is written. Otherwise good lines are "
        "imported and refused ones listed."))

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            try:
                cleaned["file_format"] = file_format(upload.name, cleaned.get("file_format"))
            except FileProblem as problem:
                self.add_error("file_format", str(problem))
        return cleaned

    def clean_mapping(self):
        """Read as the worker will read it, so a bad mapping is refused here, not later."""
        mapping = self.cleaned_data.get("mapping")
        if mapping is None:
            return None
        if mapping.size > MAPPING_MAX_BYTES:
            raise forms.ValidationError(f"A mapping file is at most {MAPPING_MAX_BYTES:,} bytes.")
        with tempfile.NamedTemporaryFile(suffix=".json") as copy:
            for chunk in mapping.chunks():
                copy.write(chunk)
            copy.flush()
            try:
                Mapping.load(copy.name)
            except FileProblem as problem:
                raise forms.ValidationError(str(problem).replace(copy.name, mapping.name))
        return mapping


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = ("created_at", "file_name", "status_shown", "progress_shown",
                    "refused_shown", "customers_shown", "devices_shown", "started_by",
                    "finished_at")
    list_filter = ("status", "dry_run", "atomic")
    search_fields = ("file_name",)
    list_select_related = ("started_by",)
    change_list_template = "admin/onboarding/importjob/change_list.html"

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a job is a record of what a worker did; its page shows, never edits

    def has_view_permission(self, request, obj=None) -> bool:
        """Whoever started a job may follow it, e.g. from the Customers import."""
        own = obj is not None and obj.started_by_id == request.user.pk
        return own or super().has_view_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        running = obj is not None and obj.status == ImportJob.Status.RUNNING
        return not running and super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        jobs.import_jobs_delete(jobs=[obj])

    def delete_queryset(self, request, queryset):
        jobs.import_jobs_delete(jobs=queryset)

    def get_urls(self):
        rejects = path("<path:object_id>/rejects/", self.admin_site.admin_view(self.rejects_view),
                       name="onboarding_importjob_rejects")
        return [rejects, *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        """The "Import customers" page: the file, its options, and a job for a worker."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            job = jobs.import_job_create(
                upload=data["file"], file_format=data["file_format"], user=request.user,
                dry_run=data["dry_run"], atomic=data["atomic"], mapping=data["mapping"])
            return redirect(_job_url(job))
        return TemplateResponse(request, "admin/onboarding/importjob/upload.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "form": form,
            "title": "Import customers", "preview_max_rows":
                settings.CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS,
        })

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The job's progress page, reloading itself until the job is done."""
        job = self._job(request, object_id)
        progress = jobs.import_job_progress(job)
        return TemplateResponse(request, "admin/onboarding/importjob/progress.html", {
            **self.admin_site.each_context(request), "opts": self.opts, "job": job,
            "title": f"Import of {job.file_name}", "progress": progress,
            "stalled": jobs.import_job_is_stalled(job, progress),
            "refresh": None if job.is_finished() else PROGRESS_REFRESH_SECONDS,
            **_figures(job, progress),
        })

    def rejects_view(self, request, object_id):
        job = self._job(request, object_id)
        if not job.rejects:
            raise Http404("This job refused no lines.")
        name = f"{os.path.splitext(job.file_name)[0]}.rejects.csv"
        return FileResponse(job.rejects.open("rb"), as_attachment=True, filename=name,
                            content_type="text/csv")

    def _job(self, request, object_id) -> ImportJob:
        key = unquote(object_id)
        job = ImportJob.objects.filter(pk=key).first() if key.isdigit() else None
        if job is None:
            raise Http404("No such import job.")
        if not self.has_view_permission(request, job):
            raise PermissionDenied
        return job

    @admin.display(description="status", ordering="status")
    def status_shown(self, job: ImportJob) -> str:
        progress = jobs.import_job_progress(job)
        if jobs.import_job_is_stalled(job, progress):
            return "stalled (worker lost; will run again)"
        return job.get_status_display()

    @admin.display(description="lines")
    def progress_shown(self, job: ImportJob) -> str:
        figures = _figures(job, jobs.import_job_progress(job))
        text = f"{figures['lines_done']:,}"
        if job.lines_total is not None and not job.is_finished():
            text += f" of ~{job.lines_total:,}"
        if figures["percent"] is not None and not job.is_finished():
            text += f" ({figures['percent']}%)"
        return text

    @admin.display(description="refused")
    def refused_shown(self, job: ImportJob) -> str:
        refused = jobs.import_job_progress(job).refused
        if job.rejects:
            url = reverse("admin:onboarding_importjob_rejects", args=[job.pk])
            return format_html('{} (<a href="{}">download</a>)', f"{refused:,}", url)
        return f"{refused:,}"

    @admin.display(description="customers")
    def customers_shown(self, job: ImportJob) -> str:
        if job.status != ImportJob.Status.DONE:
            return "-"
        return (f"{job.customers_created:,} created, {job.customers_updated:,} updated, "
                f"{job.customers_unchanged:,} unchanged" + _unwritten(job))

    @admin.display(description="devices")
    def devices_shown(self, job: ImportJob) -> str:
        if job.status != ImportJob.Status.DONE:
            return "-"
        return (f"{job.devices_created:,} created, {job.devices_updated:,} updated "
                f"({job.devices_moved:,} moved)" + _unwritten(job))


def _unwritten(job: ImportJob) -> str:
    return "" if job.written else " (would be; nothing written)"


def _job_url(job: ImportJob) -> str:
    return reverse("admin:onboarding_importjob_change", args=[job.pk])


def _figures(job: ImportJob, progress: jobs.JobProgress) -> dict:
    """Lines done, share of the total, lines a second and seconds left, for the pages."""
    done, total = progress.lines, job.lines_total
    percent = min(100, done * 100 // total) if total else None
    seconds = job.seconds_running()
    rate = done / seconds if seconds and done else None
    left = (total - done) / rate if rate and total and total > done else None
    return {"lines_done": done, "percent": percent, "rate": rate, "seconds_left": left,
            "seconds": seconds}


def customers_import_handoff(request, upload, upload_format: str):
    """The Customers import (audiences.admin.import_handoff): a file of more rows than
    CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS is imported as a job, all or nothing like every import
    on that page, and the user lands on its progress page. Smaller files are previewed."""
    limit = settings.CUSTOMERS_IMPORT_PREVIEW_MAX_ROWS
    if upload_format == "xlsx":
        return _big_spreadsheet_refused(request, upload, limit)
    if upload_format != "csv":
        return None
    lines = jobs.lines_count(upload.chunks(), stop_above=limit + 1)
    if lines - 1 <= limit:  # the header is a line, not a row
        return None
    job = jobs.import_job_create(upload=upload, file_format="csv", user=request.user,
                                 atomic=True)
    messages.info(request, (
        f"{job.file_name} has more than {limit:,} rows, too many to preview: it is being "
        "imported by a worker, all or nothing (one refused row and nothing is written; the "
        "refused rows can be downloaded here with their reasons)."))
    return redirect(_job_url(job))


def _big_spreadsheet_refused(request, upload, limit: int):
    """Big files are imported as CSV only: the worker streams CSV and JSON Lines."""
    try:
        workbook = load_workbook(upload, read_only=True)  # reads the sheet's size, not its rows
    except Exception:  # not a workbook (openpyxl has many ways to say so): the preview says it
        return None
    rows = (workbook.active.max_row or 0) - 1  # None: the file does not say; preview it
    workbook.close()
    if rows <= limit:
        return None
    messages.error(request, (
        f"This spreadsheet has {rows:,} rows, more than the {limit:,} an import previews. "
        "Save it as CSV (UTF-8) and import that: bigger files are imported by a worker, with "
        "a progress page."))
    return redirect(request.get_full_path())

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

FORMATS = [("csv", "CSV"), ("jsonl", "JSON Lines")]


def upload_folder(job, filename: str) -> str:
    """A folder of its own for each upload: the job's progress and rejects files sit beside
    it under fixed names."""
    return f"imports/{timezone.now():%Y/%m/%d}/{secrets.token_hex(8)}/{filename}"


class ImportJob(models.Model):
    """A customers file imported by a worker (onboarding.jobs), started from the admin.

    The row holds what is known before and after the import; while it runs, progress lives in a
    small file beside the upload (the import is one transaction, and its writes to this table
    would not be seen before the end)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    file = models.FileField(upload_to=upload_folder, max_length=500)
    file_name = models.CharField(max_length=255, help_text="The name it was uploaded with.")
    file_format = models.CharField(max_length=8, choices=FORMATS)
    mapping_file = models.FileField(upload_to=upload_folder, max_length=500, blank=True)
    dry_run = models.BooleanField(default=False)
    atomic = models.BooleanField(default=False)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Each run's number: a worker that lost the job (see jobs.import_jobs_sweep) cannot
    # record its end over a later run's.
    attempts = models.PositiveSmallIntegerField(default=0)
    lines_total = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Counted from the file's line breaks before the "
                                         "import, exact once it is done.")
    lines_done = models.PositiveBigIntegerField(default=0)
    refused = models.PositiveBigIntegerField(default=0)
    customers_created = models.PositiveBigIntegerField(default=0)
    customers_updated = models.PositiveBigIntegerField(default=0)
    customers_unchanged = models.PositiveBigIntegerField(default=0)
    devices_created = models.PositiveBigIntegerField(default=0)
    devices_updated = models.PositiveBigIntegerField(default=0)
    devices_moved = models.PositiveBigIntegerField(default=0)
    written = models.BooleanField(
        null=True, blank=True, help_text="False after a dry run, or an atomic import with "
                                         "refused lines: the counts say what would have been.")
    rejects = models.FileField(upload_to=upload_folder, max_length=500, blank=True)
    error = models.TextField(blank=True, help_text="Why a failed job stopped.")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display().lower()})"

    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    def seconds_running(self, now=None) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or now or timezone.now()
        return max((end - self.started_at).total_seconds(), 0.0)

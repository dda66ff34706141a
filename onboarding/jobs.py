"""Import jobs: a customers file uploaded in the admin and imported by a Celery worker through
onboarding.services.customers_import, with its progress visible while the import runs and its
refused lines in a CSV to download.

The import is one transaction, so nothing it writes to the database is seen before it ends.
Its progress is written instead to a small file beside the upload, by a thread, every
HEARTBEAT_SECONDS: that file is also the proof that the worker is alive. Uploads, progress and
rejects live under MEDIA_ROOT, which web and workers must share."""

import json
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.core.files.uploadedfile import UploadedFile
from django.db.models import F
from django.utils import timezone

from onboarding import tasks
from onboarding.files import FileProblem, Mapping
from onboarding.models import ImportJob
from onboarding.rejects import rejects_write
from onboarding.services import ImportReport, customers_import

HEARTBEAT_SECONDS = 1.0  # progress written this often: one small file write
# A running job whose progress file is older than this lost its worker (the thread writing it
# runs through the merge's long statements too). Its transaction died with the worker, so the
# job can simply run again.
STALE_SECONDS = 60
MAX_ATTEMPTS = 3  # runs of one job before it is failed: a file that kills its worker each time
COUNT_CHUNK = 1 << 20  # bytes read at a time while counting lines
PHASES = {"reading": "Reading the file", "merging": "Merging into customers and devices",
          "rejects": "Writing the refused lines"}


def import_job_create(*, upload: UploadedFile, file_format: str, user, dry_run: bool = False,
                      atomic: bool = False, mapping: UploadedFile | None = None) -> ImportJob:
    """Store the upload (and its mapping) under MEDIA_ROOT and queue its import."""
    job = ImportJob(file_name=os.path.basename(upload.name)[:255], file_format=file_format,
                    dry_run=dry_run, atomic=atomic, started_by=user)
    upload.seek(0)
    job.file.save(job.file_name, upload, save=False)
    if mapping is not None:
        mapping.seek(0)
        job.mapping_file.save(os.path.basename(mapping.name), mapping, save=False)
    job.save()
    tasks.import_job_run.delay_on_commit(job.pk)
    return job


def lines_count(chunks: Iterable[bytes], *, stop_above: int | None = None) -> int:
    """Lines in a file read as byte chunks (a last line without a line break counts), or the
    first count over ``stop_above`` once there are more."""
    count, last = 0, b"\n"
    for chunk in chunks:
        count += chunk.count(b"\n")
        last = chunk[-1:] or last
        if stop_above is not None and count > stop_above:
            return count
    return count + (last != b"\n")


def import_job_run(*, job_id: int) -> None:
    """Run a queued job: claim it, import its file with progress, write its rejects, record
    the outcome. Does nothing with a job another run has (a second delivery of the task)."""
    job = _claim(job_id)
    if job is None:
        return
    spool, report = _beside(job, "refused.jsonl"), None
    try:
        with _Progress(job) as progress:
            report = _import(job, progress, spool)
            rejects = _rejects(job, spool, progress) if report.refused else ""
    except FileProblem as problem:
        _finish(job, status=ImportJob.Status.FAILED, error=str(problem))
        return
    except Exception as error:
        stage = "nothing was written" if report is None else (
            "after the import, while writing the refused lines")
        _finish(job, status=ImportJob.Status.FAILED, error=(
            f"The job stopped on an unexpected error ({type(error).__name__}), {stage}. The "
            "worker's log has the details."))
        raise
    finally:
        _remove(spool)
    _finish(job, status=ImportJob.Status.DONE, rejects=rejects, **_counts(report))


def _claim(job_id: int) -> ImportJob | None:
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, attempts=F("attempts") + 1, started_at=timezone.now(),
        finished_at=None, error="")
    if not claimed:
        return None
    job = ImportJob.objects.get(pk=job_id)
    try:
        with open(job.file.path, "rb") as handle:
            lines = lines_count(iter(lambda: handle.read(COUNT_CHUNK), b""))
    except OSError:
        _finish(job, status=ImportJob.Status.FAILED, error=(
            "The uploaded file is not on this worker's disk: web and workers must share "
            "MEDIA_ROOT (the var directory)."))
        return None
    job.lines_total = max(lines - (job.file_format == "csv"), 0)  # a CSV's header
    _fenced(job).update(lines_total=job.lines_total)
    return job


def _import(job: ImportJob, progress: "_Progress", spool: str) -> ImportReport:
    mapping = Mapping.load(job.mapping_file.path) if job.mapping_file else None
    with open(spool, "w", encoding="utf-8") as refusals:
        return customers_import(
            path=job.file.path, file_format=job.file_format, mapping=mapping,
            dry_run=job.dry_run, atomic=job.atomic, progress=progress.update,
            on_error=lambda line, reason: refusals.write(json.dumps([line, reason]) + "\n"),
        )


def _rejects(job: ImportJob, spool: str, progress: "_Progress") -> str:
    """The rejects CSV beside the upload; returns its storage name."""
    progress.phase = "rejects"
    stem = os.path.splitext(os.path.basename(job.file.name))[0]
    name = f"{os.path.dirname(job.file.name)}/{stem}.rejects.csv"
    rejects_write(source=job.file.path, file_format=job.file_format, refusals=_spooled(spool),
                  target=job.file.storage.path(name))
    return name


def _spooled(spool: str) -> Iterator[tuple[int, str]]:
    with open(spool, encoding="utf-8") as lines:
        for text in lines:
            line, reason = json.loads(text)
            yield line, reason


def _counts(report: ImportReport) -> dict:
    customers, devices = report.customers, report.devices
    return {
        "lines_total": report.lines, "lines_done": report.lines, "refused": report.refused,
        "written": report.written,
        "customers_created": customers.get("created", 0),
        "customers_updated": customers.get("updated", 0),
        "customers_unchanged": customers.get("unchanged", 0),
        "devices_created": devices.get("created", 0),
        "devices_updated": devices.get("updated", 0),
        "devices_moved": devices.get("moved", 0),
    }


def _fenced(job: ImportJob):
    """The job, as long as this run is its latest: a run the sweeper gave up on cannot
    record its end over a later one."""
    return ImportJob.objects.filter(pk=job.pk, attempts=job.attempts)


def _finish(job: ImportJob, *, status: str, **fields) -> None:
    _fenced(job).update(status=status, finished_at=timezone.now(), **fields)
    _remove(progress_path(job))


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def progress_path(job: ImportJob) -> str:
    return _beside(job, "progress.json")


def _beside(job: ImportJob, name: str) -> str:
    """A file in the upload's own folder (models.upload_folder)."""
    return os.path.join(os.path.dirname(job.file.path), name)


class _Progress:
    """A run's progress, written to progress_path by a thread every HEARTBEAT_SECONDS, through
    the merge's long statements as well, so an old file means a dead worker."""

    def __init__(self, job: ImportJob):
        self.path, self.attempt = progress_path(job), job.attempts
        self.size = job.file.size
        self.lines = self.refused = 0
        self.phase = "reading"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True,
                                        name=f"import-job-{job.pk}-progress")

    def update(self, bytes_read: int, lines: int, refused: int) -> None:
        self.lines, self.refused = lines, refused
        if bytes_read >= self.size:  # the last call: the whole file is staged
            self.phase = "merging"

    def __enter__(self) -> "_Progress":
        self._write()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            self._write()

    def _write(self) -> None:
        state = {"attempt": self.attempt, "lines": self.lines, "refused": self.refused,
                 "phase": self.phase, "at": time.time()}
        temporary = f"{self.path}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        os.replace(temporary, self.path)  # readers see the old state or the new, never half


@dataclass
class JobProgress:
    lines: int
    refused: int
    phase: str  # a PHASES key, or "" when the job is not running
    heartbeat: float | None  # when a running job's worker last wrote (epoch seconds)

    @property
    def phase_text(self) -> str:
        return PHASES.get(self.phase, "Starting")


def import_job_progress(job: ImportJob) -> JobProgress:
    """Where the job is: the row's numbers, or a running job's progress file."""
    if job.status != ImportJob.Status.RUNNING:
        return JobProgress(job.lines_done, job.refused, "", None)
    try:
        with open(progress_path(job), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        state = {}
    if state.get("attempt") != job.attempts:
        state = {}
    return JobProgress(state.get("lines", 0), state.get("refused", 0), state.get("phase", ""),
                       state.get("at"))


def import_job_is_stalled(job: ImportJob, progress: JobProgress, now: float | None = None
                          ) -> bool:
    """Running, with no sign of life from its worker for STALE_SECONDS."""
    if job.status != ImportJob.Status.RUNNING:
        return False
    alive_at = progress.heartbeat or (job.started_at.timestamp() if job.started_at else 0)
    return (now or time.time()) - alive_at > STALE_SECONDS


def import_jobs_sweep() -> int:
    """Jobs whose worker died: queued again (their import's transaction died with the worker,
    so nothing of that run was written), or failed after MAX_ATTEMPTS runs. Returns how many
    were found."""
    found = 0
    running = ImportJob.objects.filter(status=ImportJob.Status.RUNNING)
    for job in running.only("pk", "file", "attempts", "status", "started_at"):
        if not import_job_is_stalled(job, import_job_progress(job)):
            continue
        found += 1
        if job.attempts >= MAX_ATTEMPTS:
            _finish(job, status=ImportJob.Status.FAILED, error=(
                f"The worker importing this file stopped {job.attempts} times (killed, or out "
                "of memory); nothing was written. Check the workers' logs, then import the "
                "file again."))
        elif _fenced(job).filter(status=ImportJob.Status.RUNNING).update(
                status=ImportJob.Status.QUEUED):
            tasks.import_job_run.delay_on_commit(job.pk)
    return found


def import_jobs_delete(*, jobs: Iterable[ImportJob]) -> int:
    """Delete finished or queued jobs with their files; a running job is left alone."""
    deleted = 0
    for job in jobs:
        if job.status == ImportJob.Status.RUNNING:
            continue
        folders = {os.path.dirname(f.path) for f in (job.file, job.mapping_file) if f}
        for leftover in ("progress.json", "refused.jsonl"):  # a killed worker's
            _remove(_beside(job, leftover))
        for field_file in (job.file, job.mapping_file, job.rejects):
            if field_file:
                field_file.delete(save=False)
        for folder in folders:
            _remove_folder(folder)
        job.delete()
        deleted += 1
    return deleted


def _remove_folder(folder: str) -> None:
    try:
        os.rmdir(folder)
    except OSError:  # not empty, or gone: left as it is
        pass

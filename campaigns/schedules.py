"""A campaign's own django-celery-beat row, kept in step with the campaign.

A broadcast with a send time owns a one-off ClockedTask; a recurring campaign owns a crontab
PeriodicTask in its time zone. Both call ``campaigns.tasks.campaign_run`` with the campaign's
id and are named "Campaign #12: Weekly travel tips" so staff recognise them in the beat admin.
A row exists while the campaign may still run (scheduled, running, paused) and is enabled only
while it should fire; drafts, completed and archived campaigns own none."""

from django.core.exceptions import ValidationError
from django_celery_beat import validators
from django_celery_beat.models import ClockedSchedule, CrontabSchedule, PeriodicTask

from audiences.models import validate_time_zone
from campaigns.models import Campaign

RUN_TASK = "campaigns.tasks.campaign_run"
# A broadcast that could not start within 6 hours of its time (beat or every worker down) is
# dropped rather than sent late: a 10:00 message should not arrive in the evening. The campaign
# stays scheduled, so staff see it did not go out.
BROADCAST_EXPIRES_SECONDS = 6 * 3600
# A recurring run not started within the hour is dropped: the next run enrolls the segment again.
RECURRING_EXPIRES_SECONDS = 3600
CRONTAB_FIELDS = (
    ("minute", validators.minute_validator),
    ("hour", validators.hour_validator),
    ("day of month", validators.day_of_month_validator),
    ("month", validators.month_of_year_validator),
    ("day of week", validators.day_of_week_validator),
)
OWNS_A_ROW = {Campaign.Status.SCHEDULED, Campaign.Status.RUNNING, Campaign.Status.PAUSED}


def crontab_errors(crontab: str, time_zone: str) -> dict[str, list[str]]:
    """Field errors for a recurring schedule: five cron fields that django-celery-beat accepts,
    and an IANA time zone."""
    errors: dict[str, list[str]] = {}
    parts = crontab.split()
    if len(parts) != len(CRONTAB_FIELDS):
        errors["crontab"] = [
            f"Give 5 fields, \"minute hour day-of-month month day-of-week\" (e.g. \"0 10 * * 1\" "
            f"for Mondays at 10:00); got {len(parts)}."
        ]
    else:
        for value, (label, validator) in zip(parts, CRONTAB_FIELDS, strict=True):
            try:
                validator(value)
            except Exception:  # the cron parser raises assorted errors on garbage
                errors.setdefault("crontab", []).append(f"The {label} field {value!r} is invalid.")
    try:
        validate_time_zone(time_zone)
    except ValidationError as error:
        errors["crontab_time_zone"] = error.messages
    return errors


def beat_task_name(campaign: Campaign) -> str:
    return f"Campaign #{campaign.pk}: {campaign.name}"


def campaign_beat_sync(*, campaign: Campaign) -> None:
    """Create, update, disable or delete the campaign's beat row to match its kind, schedule
    and status. Call inside the transaction that changed the campaign."""
    schedule = _wanted_schedule(campaign)
    task = PeriodicTask.objects.filter(pk=campaign.beat_task_id).first()
    if schedule is None:
        if task is not None:
            _beat_task_delete(task)
        if campaign.beat_task_id is not None:
            Campaign.objects.filter(pk=campaign.pk).update(beat_task=None)
            campaign.beat_task = None
        return
    task = task or PeriodicTask(name=beat_task_name(campaign), task=RUN_TASK)
    old_clocked = task.clocked if task.clocked_id and task.clocked != schedule else None
    _beat_task_fill(task, campaign, schedule)
    task.save()
    if old_clocked is not None:
        _clocked_delete_if_unused(old_clocked)
    if campaign.beat_task_id != task.pk:
        Campaign.objects.filter(pk=campaign.pk).update(beat_task=task)
        campaign.beat_task = task


def _wanted_schedule(campaign: Campaign) -> ClockedSchedule | CrontabSchedule | None:
    if campaign.status not in OWNS_A_ROW:
        return None
    if campaign.kind == Campaign.Kind.BROADCAST and campaign.send_at:
        current = PeriodicTask.objects.filter(pk=campaign.beat_task_id).first()
        clocked = current.clocked if current is not None else None
        if clocked is not None and clocked.clocked_time == campaign.send_at:
            return clocked
        return ClockedSchedule.objects.create(clocked_time=campaign.send_at)
    if campaign.kind == Campaign.Kind.RECURRING and campaign.crontab:
        minute, hour, day_of_month, month_of_year, day_of_week = campaign.crontab.split()
        return CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=day_of_month, month_of_year=month_of_year,
            day_of_week=day_of_week, timezone=campaign.crontab_time_zone,
        )[0]
    return None


def _beat_task_fill(task: PeriodicTask, campaign: Campaign, schedule) -> None:
    task.name = beat_task_name(campaign)
    task.task, task.args, task.kwargs = RUN_TASK, f"[{campaign.pk}]", "{}"
    task.queue = "default"
    task.interval = task.solar = None
    if isinstance(schedule, ClockedSchedule):
        task.clocked, task.crontab, task.one_off = schedule, None, True
        task.expire_seconds = BROADCAST_EXPIRES_SECONDS
        # A fired one-off must not fire again: it is live only until the broadcast starts.
        task.enabled = campaign.status == Campaign.Status.SCHEDULED
    else:
        task.crontab, task.clocked, task.one_off = schedule, None, False
        task.expire_seconds = RECURRING_EXPIRES_SECONDS
        task.enabled = campaign.status == Campaign.Status.RUNNING
    task.description = f"Starts a run of the campaign \"{campaign.name}\"; edit the campaign, " \
                       "not this row (the campaign rewrites it on every change)."


def _beat_task_delete(task: PeriodicTask) -> None:
    clocked = task.clocked
    task.delete()
    if clocked is not None:
        _clocked_delete_if_unused(clocked)


def _clocked_delete_if_unused(clocked: ClockedSchedule) -> None:
    if not PeriodicTask.objects.filter(clocked=clocked).exists():
        clocked.delete()

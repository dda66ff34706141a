"""The one place where system periodic tasks are defined. ``schedules_sync`` writes them as
django-celery-beat rows after every migrate, so beat (DatabaseScheduler) and the admin see them."""

from dataclasses import dataclass

from django_celery_beat.models import CrontabSchedule, PeriodicTask


@dataclass(frozen=True)
class SystemTask:
    name: str
    task: str
    crontab: str  # "minute hour day_of_month month_of_year day_of_week", UTC
    expires_seconds: int  # a tick not started by then is dropped: the next one does its work
    queue: str = "default"


SYSTEM_TASKS = [
    SystemTask(
        name="Lifecycle: inactivity stage rules",
        task="audiences.tasks.stage_rules_apply_inactivity",
        crontab="*/15 * * * *",
        expires_seconds=14 * 60,
    ),
    SystemTask(
        name="Delivery: sweep dead workers' batches and dispatch due batches",
        task="notifications.tasks.deliveries_sweep",
        crontab="* * * * *",
        expires_seconds=55,
    ),
    SystemTask(
        name="Onboarding: queue again the import jobs of dead workers",
        task="onboarding.tasks.import_jobs_sweep",
        crontab="* * * * *",
        expires_seconds=55,
    ),
    SystemTask(
        name="Journeys: advance due enrollments",
        task="campaigns.tasks.journeys_tick",
        crontab="* * * * *",
        expires_seconds=55,
    ),
    SystemTask(
        name="Journeys: segment entries",
        task="campaigns.tasks.segment_entries_process",
        crontab="*/5 * * * *",
        expires_seconds=4 * 60,
    ),
    SystemTask(
        name="Analytics: refresh the daily rollups",
        task="analytics.tasks.rollups_refresh",
        # Every minute, so a send's numbers show within 90 s of it finishing (the refresh
        # reads only what changed: README "Rollups: refresh and rebuild" has its cost).
        crontab="* * * * *",
        expires_seconds=55,
        queue="analytics",
    ),
]


def schedules_sync(**kwargs) -> None:
    for system_task in SYSTEM_TASKS:
        minute, hour, day_of_month, month_of_year, day_of_week = system_task.crontab.split()
        schedule, _ = CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_month=day_of_month,
            month_of_year=month_of_year, day_of_week=day_of_week, timezone="UTC",
        )
        PeriodicTask.objects.update_or_create(
            name=system_task.name,
            defaults={
                "task": system_task.task, "crontab": schedule, "interval": None,
                "expire_seconds": system_task.expires_seconds, "queue": system_task.queue,
                "enabled": True,
            },
        )

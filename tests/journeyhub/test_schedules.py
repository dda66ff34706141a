"""System periodic tasks (journeyhub/schedules.py) become django-celery-beat rows on migrate."""

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from journeyhub.celery import app
from journeyhub.schedules import SYSTEM_TASKS

pytestmark = pytest.mark.django_db


def system_rows() -> list[PeriodicTask]:
    names = [system_task.name for system_task in SYSTEM_TASKS]
    return list(PeriodicTask.objects.filter(name__in=names).select_related("crontab"))


def test_migrate_writes_every_system_periodic_task_with_its_schedule():
    PeriodicTask.objects.all().delete()  # given: the rows are gone, e.g. deleted in the admin

    call_command("migrate", verbosity=0)

    rows = {row.name: row for row in system_rows()}
    assert set(rows) == {system_task.name for system_task in SYSTEM_TASKS}
    for system_task in SYSTEM_TASKS:
        row = rows[system_task.name]
        crontab = row.crontab
        fields = (crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year,
                  crontab.day_of_week)
        assert " ".join(fields) == system_task.crontab
        assert str(crontab.timezone) == "UTC"
        assert row.task == system_task.task
        assert row.interval is None
        assert row.expire_seconds == system_task.expires_seconds
        assert row.queue == system_task.queue
        assert row.enabled


def test_migrate_twice_keeps_one_row_per_system_task():
    call_command("migrate", verbosity=0)
    call_command("migrate", verbosity=0)

    assert len(system_rows()) == len(SYSTEM_TASKS)


def test_every_system_task_names_a_registered_celery_task():
    app.loader.import_default_modules()

    unknown = [t.task for t in SYSTEM_TASKS if t.task not in app.tasks]

    assert not unknown, f"beat would send tasks no worker knows: {unknown}"


def test_every_system_task_expires():
    assert all(system_task.expires_seconds > 0 for system_task in SYSTEM_TASKS)
